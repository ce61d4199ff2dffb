package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/iisremedy/iisremedy/playbooks"
	"github.com/iisremedy/iisremedy/remediate"
	"github.com/iisremedy/iisremedy/remote"
	"github.com/spf13/pflag"
)

// remediationFlags are the flags of the commands that plan or stage a remediation.
type remediationFlags struct {
	Installers     string
	Stage          string
	Share          string
	ServeAddr      string
	BWLimit        string
	Include        []string
	WorkDir        string
	Warmup         string
	Playbook       string
	Soak           time.Duration
	InstallTimeout time.Duration
	RebootTimeout  time.Duration
	Poll           time.Duration

	bytesPerSecond float64
}

func (r *remediationFlags) addFlags(f *pflag.FlagSet) {
	f.StringVar(&r.Installers, "installers", "", "`DIR` of the SP2 installer files, under their catalogue names (see README)")
	f.StringVar(&r.Stage, "stage", remediate.StagePush, "how installers reach the hosts: push (through WinRM), pull (the host downloads from --serve-addr) or share (copied from --share by a SYSTEM task)")
	f.StringVar(&r.Share, "share", "", `UNC folder holding the installers for --stage share (\\server\share\folder)`)
	f.StringVar(&r.ServeAddr, "serve-addr", "", "`host:port` of this machine that the hosts can reach, for --stage pull")
	f.StringVar(&r.BWLimit, "bwlimit", "", "cap on installer bytes per second to all hosts together, like 500k or 2M (1024-based)")
	f.StringSliceVar(&r.Include, "include", nil, "also remediate hosts with this verdict: at-risk")
	f.StringVar(&r.WorkDir, "work-dir", "", `folder on every host for the installer and markers (default <SystemDrive>\iisremedy)`)
	f.StringVar(&r.Warmup, "warmup", "remote", "where the verify step's requests come from: remote (this machine) or local (the host itself)")
	f.StringVar(&r.Playbook, "playbook", "", "playbook: an embedded name or a YAML `FILE` (default: every embedded playbook)")
	f.DurationVar(&r.Soak, "soak", 0, "how long pools are watched after the fix (default: the playbook's, 10m)")
	f.DurationVar(&r.InstallTimeout, "install-timeout", 0, "longest the installer may run (default: the playbook's)")
	f.DurationVar(&r.RebootTimeout, "reboot-timeout", 0, "longest a host may take to come back (default: the playbook's)")
	f.DurationVar(&r.Poll, "poll", 0, "how often a running install, a restarting host and the soak are looked at (default 15s)")
}

func (r *remediationFlags) validate() error {
	switch r.Stage {
	case remediate.StagePush, remediate.StagePull, remediate.StageShare:
	default:
		return usageErrorf("--stage %q: want push, pull or share", r.Stage)
	}
	if r.Stage == remediate.StageShare && !uncRe.MatchString(r.Share) {
		return usageErrorf("--share %q: --stage share needs a UNC folder like \\\\server\\share\\sp2 (letters, digits, _ - . $ in its parts)", r.Share)
	}
	if r.Stage == remediate.StagePull && r.ServeAddr == "" {
		return usageErrorf("--stage pull: give --serve-addr host:port, an address of this machine the hosts can reach")
	}
	if r.Installers == "" {
		return usageErrorf("give the directory of the SP2 installer files with --installers DIR")
	}
	if st, err := os.Stat(r.Installers); err != nil || !st.IsDir() {
		return usageErrorf("--installers %s: not a directory", r.Installers)
	}
	var err error
	if r.bytesPerSecond, err = parseRate(r.BWLimit); err != nil {
		return usageErrorf("--bwlimit %q: %v", r.BWLimit, err)
	}
	for _, v := range r.Include {
		if v != string(playbooks.AtRisk) {
			return usageErrorf("--include %q: only at-risk can be included", v)
		}
	}
	if err := remediate.CheckWorkDir(r.WorkDir); err != nil {
		return usageErrorf("--work-dir %v", err)
	}
	if r.Warmup != "remote" && r.Warmup != "local" {
		return usageErrorf("--warmup %q: want remote or local", r.Warmup)
	}
	for name, d := range map[string]time.Duration{"--soak": r.Soak, "--install-timeout": r.InstallTimeout, "--reboot-timeout": r.RebootTimeout, "--poll": r.Poll} {
		if d < 0 {
			return usageErrorf("%s %s: want a positive duration", name, d)
		}
	}
	return nil
}

// uncRe is a UNC folder that can be pasted into a batch line between double quotes.
var uncRe = regexp.MustCompile(`^\\\\[A-Za-z0-9_.-]+(\\[A-Za-z0-9_.$-]+)+$`)

// rateRe is a --bwlimit value: a number with an optional k, m or g (1024-based).
var rateRe = regexp.MustCompile(`^(\d+(?:\.\d+)?)([kKmMgG]?)[bB]?$`)

// parseRate reads a bytes-per-second rate; "" is no limit.
func parseRate(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	m := rateRe.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("want bytes per second like 500k, 2M or 1.5g")
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	switch strings.ToLower(m[2]) {
	case "k":
		v *= 1 << 10
	case "m":
		v *= 1 << 20
	case "g":
		v *= 1 << 30
	}
	if v < 1024 {
		return 0, fmt.Errorf("at least 1k a second")
	}
	return v, nil
}

// options are the plan options the flags ask for, with the step timings of the playbook.
func (r *remediationFlags) options(pb *playbooks.Playbook) remediate.Options {
	t := remediate.TimingFrom(pb.Steps)
	for _, o := range []struct {
		flag time.Duration
		dst  *remediate.Duration
	}{{r.Soak, &t.Soak}, {r.InstallTimeout, &t.Install}, {r.RebootTimeout, &t.Reboot}, {r.Poll, &t.Poll}} {
		if o.flag > 0 {
			*o.dst = remediate.Duration(o.flag)
		}
	}
	dir, err := filepath.Abs(r.Installers)
	if err != nil {
		dir = r.Installers
	}
	return remediate.Options{IncludeAtRisk: slices.Contains(r.Include, string(playbooks.AtRisk)), Stage: r.Stage,
		Share: r.Share, WorkDir: r.WorkDir, Warmup: r.Warmup, InstallerDir: dir, Timing: t}
}

// hashCache is the installer hash cache in the user's cache directory (memory only when there
// is none).
func hashCache() *remediate.HashCache {
	dir, err := os.UserCacheDir()
	if err != nil {
		return &remediate.HashCache{}
	}
	return &remediate.HashCache{Path: filepath.Join(dir, "iisremedy", "installer-hashes.json")}
}

// loadInstallers checks the installer directory against the catalogue: any problem is bad
// input, before a byte is sent.
func loadInstallers(dir string, pb *playbooks.Playbook) (*remediate.Installers, error) {
	in, err := remediate.LoadInstallers(dir, pb, hashCache())
	return in, asUsage(err)
}

// planned is what plan, run and stage share: the hosts probed, their findings and the plan.
type planned struct {
	plan       *remediate.Plan
	installers *remediate.Installers
	hosts      []remediate.Host
	password   string
	pbs        []*playbooks.Playbook
	engine     *remediate.Engine
}

// makePlan probes the inventory's hosts and plans their remediation; nothing is written to a
// host.
func makePlan(ctx context.Context, ios *ioStreams, global *globalOptions, connect *connectOptions, rem *remediationFlags, inventory string) (*planned, error) {
	if inventory == "" {
		return nil, usageErrorf("give the host list with -i FILE (one host a line)")
	}
	if err := connect.validate(); err != nil {
		return nil, err
	}
	if err := rem.validate(); err != nil {
		return nil, err
	}
	pbs, err := loadPlaybooks(rem.Playbook)
	if err != nil {
		return nil, err
	}
	def := playbooks.Default()
	if len(pbs) > 0 {
		def = pbs[0]
	}
	installers, err := loadInstallers(rem.Installers, def)
	if err != nil {
		return nil, err
	}
	inv, err := readInventory(inventory)
	if err != nil {
		return nil, err
	}
	hosts, err := resolveTargets(ios, global.Quiet, inv, connect.defaults())
	if err != nil {
		return nil, err
	}
	password, err := connect.password(ctx, ios)
	if err != nil {
		return nil, err
	}
	e := newEngine(global, ios, connect, password, pbs)
	findings := runDetect(ctx, ios, global, e, hosts)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	plan := remediate.NewPlan(findings, rem.options(def), installers, pbs, "iisremedy "+buildVersion(), global.engineClock().Now(), inventory)
	return &planned{plan: plan, installers: installers, hosts: hosts, password: password, pbs: pbs, engine: e}, nil
}

// newEngine builds the engine of a command that connects.
func newEngine(global *globalOptions, ios *ioStreams, connect *connectOptions, password string, pbs []*playbooks.Playbook) *remediate.Engine {
	logger := global.logger(ios)
	clock := global.engineClock()
	return &remediate.Engine{
		Dial:         remediate.WinRMDialer(password, remote.WithLogger(logger), remote.WithSleep(clock.Sleep)),
		Clock:        clock,
		Playbooks:    pbs,
		Parallel:     connect.Parallel,
		ProbeTimeout: connect.ProbeTimeout,
		Logger:       logger,
	}
}

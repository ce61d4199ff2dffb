package remediate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/iisremedy/iisremedy/checks"
	"github.com/iisremedy/iisremedy/playbooks"
	"github.com/iisremedy/iisremedy/remote"
)

// PlanVersion is the version of the plan file format this build writes and reads.
const PlanVersion = 1

// Plan is a reviewed remediation: per host the facts it rests on, the verdict, and the exact
// steps with their commands. `plan` writes it, a change board reads its Markdown form, `apply`
// does exactly it. Digest, the SHA-256 of the plan with Digest empty, is what the board signs:
// a plan edited after review no longer matches its digest and is refused.
type Plan struct {
	Version   int        `json:"version"`
	Tool      string     `json:"tool"`
	Created   time.Time  `json:"created"`
	Inventory string     `json:"inventory"`
	Playbooks []string   `json:"playbooks"`
	Options   Options    `json:"options"`
	Hosts     []PlanHost `json:"hosts"`
	Digest    string     `json:"digest"`
}

// Options are a plan's remediation settings.
type Options struct {
	IncludeAtRisk bool `json:"include_at_risk"`
	// Stage is how installers reach the hosts: push (through the WinRM shell), pull (the host
	// downloads from the runner) or share (a SYSTEM task copies from Share).
	Stage string `json:"stage"`
	Share string `json:"share,omitempty"` // \\server\share\folder holding the installers
	// WorkDir is the folder on every host (""= <SystemDrive>\iisremedy).
	WorkDir string `json:"work_dir,omitempty"`
	// Warmup is where the verify step's requests come from: remote (this machine) or local
	// (the host itself).
	Warmup       string `json:"warmup"`
	InstallerDir string `json:"installer_dir"`
	Timing       Timing `json:"timing"`
}

// Stage methods.
const (
	StagePush  = "push"
	StagePull  = "pull"
	StageShare = "share"
)

// Timing are the step timings of a plan, on the engine's clock (simulated in the lab).
type Timing struct {
	Stage        Duration `json:"stage"`
	Install      Duration `json:"install"`
	RebootDelay  Duration `json:"reboot_delay"`
	Reboot       Duration `json:"reboot"`
	PoolStart    Duration `json:"pool_start"`
	Soak         Duration `json:"soak"`
	Poll         Duration `json:"poll"`
	RebootReason string   `json:"reboot_reason"`
}

// TimingFrom takes a playbook's step settings, with the defaults of the optional ones.
func TimingFrom(s playbooks.Steps) Timing {
	t := Timing{Stage: Duration(s.StageTimeout), Install: Duration(s.InstallTimeout), RebootDelay: Duration(s.RebootDelay),
		Reboot: Duration(s.RebootTimeout), PoolStart: Duration(s.PoolStartTimeout), Soak: Duration(s.Soak),
		Poll: Duration(s.PollInterval), RebootReason: s.RebootReason}
	if t.Stage == 0 {
		t.Stage = Duration(2 * time.Hour)
	}
	if t.Poll == 0 {
		t.Poll = Duration(15 * time.Second)
	}
	return t
}

// Duration is a time.Duration written as text ("30m0s") in plans.
type Duration time.Duration

// MarshalText writes the duration as time.Duration prints it.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a duration like "30m" or "1h30m0s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil || v < 0 {
		return fmt.Errorf("%q is not a duration like 30m", b)
	}
	*d = Duration(v)
	return nil
}

// D is the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Plan actions per host.
const (
	ActionRemediate = "remediate" // the steps below are done
	ActionNone      = "none"      // nothing is done: the verdict asks for no fix (Reason says why)
	ActionBlocked   = "blocked"   // a fix is needed but cannot be done as things are (Reason)
)

// PlanHost is one host of a plan.
type PlanHost struct {
	Host     string            `json:"host"`
	Group    string            `json:"group,omitempty"`
	Target   PlanTarget        `json:"target"`
	Verdict  playbooks.Verdict `json:"verdict"`
	Playbook string            `json:"playbook,omitempty"`
	Evidence []string          `json:"evidence"`
	Action   string            `json:"action"`
	Reason   string            `json:"reason"`
	// Facts are the facts the plan rests on; Fingerprint their digest. apply refuses a host
	// whose facts differ, naming the fact.
	Facts       map[string]string `json:"facts,omitempty"`
	Fingerprint string            `json:"fingerprint,omitempty"`
	Installer   *PlanInstaller    `json:"installer,omitempty"`
	Steps       []PlanStep        `json:"steps,omitempty"`
}

// PlanTarget is how to reach a host, without secrets.
type PlanTarget struct {
	Host             string `json:"host"`
	Port             int    `json:"port"`
	HTTPS            bool   `json:"https,omitempty"`
	Auth             string `json:"auth"`
	User             string `json:"user"`
	TLSFingerprint   string `json:"tls_fingerprint,omitempty"`
	LegacyTLS        bool   `json:"legacy_tls,omitempty"`
	AllowUnencrypted bool   `json:"allow_unencrypted,omitempty"`
}

// PlanInstaller is the installer a host gets.
type PlanInstaller struct {
	File      string   `json:"file"`
	Arch      string   `json:"arch"`
	Language  string   `json:"language"`
	Size      int64    `json:"size"`
	SHA256    string   `json:"sha256"`
	Reference string   `json:"checked_against"`
	Switches  []string `json:"switches"`
	Method    string   `json:"method"`
}

// PlanStep is one step with the commands it runs (placeholders in <> are filled in at apply:
// offsets, dates, tokens).
type PlanStep struct {
	Step     Step     `json:"step"`
	Commands []string `json:"commands"`
	Notes    []string `json:"notes,omitempty"`
}

func targetOf(h Host) PlanTarget {
	t := h.Target
	return PlanTarget{Host: t.Host, Port: t.Port, HTTPS: t.HTTPS, Auth: t.Auth, User: t.User,
		TLSFingerprint: t.TLS.Fingerprint, LegacyTLS: t.TLS.LegacyTLS, AllowUnencrypted: t.AllowUnencrypted}
}

// host rebuilds the inventory host and target of a plan host.
func (ph PlanHost) host() Host {
	t := remote.Target{Host: ph.Target.Host, Port: ph.Target.Port, HTTPS: ph.Target.HTTPS, Auth: ph.Target.Auth,
		User: ph.Target.User, AllowUnencrypted: ph.Target.AllowUnencrypted}
	t.TLS.Fingerprint = ph.Target.TLSFingerprint
	t.TLS.LegacyTLS = ph.Target.LegacyTLS
	return Host{InventoryHost: InventoryHost{Host: ph.Target.Host, Entry: ph.Host, Port: ph.Target.Port, HTTPS: ph.Target.HTTPS, Group: ph.Group}, Target: t}
}

// NewPlan turns findings into a plan. Affected and mismatch hosts are remediated, at-risk ones
// only with IncludeAtRisk; every other verdict is left alone, saying why. A host whose installer
// is not among installers, or whose disk is too full for it, is blocked.
func NewPlan(findings []HostFinding, opts Options, installers *Installers, pbs []*playbooks.Playbook, tool string, created time.Time, inventory string) *Plan {
	pbs = embeddedOr(pbs)
	p := &Plan{Version: PlanVersion, Tool: tool, Created: created.UTC(), Inventory: inventory, Options: opts}
	for _, pb := range pbs {
		p.Playbooks = append(p.Playbooks, pb.Name)
	}
	for _, f := range findings {
		ph := PlanHost{Host: f.Host.Entry, Group: f.Host.Group, Target: targetOf(f.Host), Verdict: f.Verdict,
			Playbook: f.Playbook, Evidence: f.Evidence}
		if ph.Evidence == nil {
			ph.Evidence = []string{}
		}
		if f.Facts != nil {
			ph.Facts = fingerprintFacts(f.Facts)
			ph.Fingerprint = fingerprint(ph.Facts)
		}
		ph.Action, ph.Reason = decide(f.Verdict, opts.IncludeAtRisk)
		if ph.Action == ActionRemediate {
			pb := playbookNamed(pbs, f.Playbook)
			ph.plan(f.Facts, pb, opts, installers)
		}
		p.Hosts = append(p.Hosts, ph)
	}
	p.Digest = p.digest()
	return p
}

func playbookNamed(pbs []*playbooks.Playbook, name string) *playbooks.Playbook {
	for _, pb := range pbs {
		if pb.Name == name {
			return pb
		}
	}
	return pbs[0]
}

// decide is the remediation policy of docs/design.md §5.4.
func decide(v playbooks.Verdict, includeAtRisk bool) (action, reason string) {
	switch v {
	case playbooks.Affected:
		return ActionRemediate, "affected: worker processes crash on the binary mismatch"
	case playbooks.Mismatch:
		return ActionRemediate, "mismatch: the trigger update is installed, crashes will follow"
	case playbooks.AtRisk:
		if includeAtRisk {
			return ActionRemediate, "at-risk, included by --include at-risk: fixed before the trigger update"
		}
		return ActionNone, "at-risk: breaks when the trigger update is installed; remediated only with --include at-risk"
	case playbooks.OtherCause:
		return ActionNone, "other-cause: pools crash but the binaries match; re-applying SP2 would not help — escalate"
	case playbooks.Healthy:
		return ActionNone, "healthy: nothing to do"
	case playbooks.NotApplicable:
		return ActionNone, "not-applicable"
	}
	return ActionNone, string(v) + ": its facts could not be established; nothing is planned"
}

// plan fills in a remediated host's installer and steps.
func (ph *PlanHost) plan(f *checks.Facts, pb *playbooks.Playbook, opts Options, installers *Installers) {
	if installers == nil {
		ph.Action, ph.Reason = ActionBlocked, "no installer directory given (--installers DIR)"
		return
	}
	inst, ok := installers.For(f.Arch, f.Language)
	if !ok {
		ph.Action, ph.Reason = ActionBlocked, installers.Missing(pb, f.Arch, f.Language)
		return
	}
	switches := pb.Installer.Switches
	if len(inst.Package.Switches) > 0 {
		switches = inst.Package.Switches
	}
	method := opts.Stage
	ph.Installer = &PlanInstaller{File: inst.Package.File, Arch: inst.Package.Arch, Language: inst.Package.Language,
		Size: inst.Size, SHA256: inst.SHA256, Reference: inst.Reference, Switches: switches, Method: method}
	need := stageDiskNeed(inst.Size, method, f.PowerShellVersion != "") + pb.Steps.MinFreeDiskMB<<20
	if f.Disk != nil && int64(f.Disk.FreeBytes) < need {
		ph.Action, ph.Reason = ActionBlocked, fmt.Sprintf("needs %d MB free on %s (the installer and SP2's own %d MB), has %d MB",
			need>>20, f.SystemDrive, pb.Steps.MinFreeDiskMB, f.Disk.FreeBytes>>20)
		return
	}
	work := opts.WorkDir
	if work == "" {
		work = f.SystemDrive + `\iisremedy`
	}
	exe := work + `\` + inst.SHA256 + ".exe"
	part := work + `\` + inst.SHA256 + ".part"
	ps := f.PowerShellVersion != ""
	var stage []string
	switch method {
	case StagePull:
		if ps {
			stage = []string{psPullCmd("http://<runner>/<token>/"+inst.Package.File, part)}
		} else {
			stage = []string{writeFileCmd(work + `\pull.vbs`), cscriptCmd(work+`\pull.vbs`, "http://<runner>/<token>/"+inst.Package.File, work+`\`+inst.SHA256, strconv.FormatInt(inst.Size, 10), strconv.Itoa(pullChunk)),
				fmt.Sprintf(`copy /b /y "%s\%s.p0*" "%s"`, work, inst.SHA256, part)}
		}
	case StageShare:
		stage = []string{"task as SYSTEM: " + shareCopy(opts.Share, inst.Package.File, part)}
	default:
		if ps {
			stage = []string{psDecodeCmd(part, 0) + "   <base64 lines on stdin>"}
		} else {
			stage = []string{appendFileCmd(work+`\`+inst.SHA256+".b64") + "   <base64 lines on stdin>", "task as SYSTEM: " + certutilDecodeCmd(work+`\`+inst.SHA256+".b64", part)}
		}
	}
	proof := "proof: SHA-256 on the host with PowerShell"
	if !ps {
		proof = "proof: certutil -hashfile, else size and version with wmic datafile (no PowerShell)"
	}
	stage = append([]string{mkdirCmd(work), listCmd(work)}, stage...)
	stage = append(stage, moveCmd(part, exe))
	task := "install-<run>"
	ph.Steps = []PlanStep{
		{Step: StepStage, Commands: stage, Notes: []string{fmt.Sprintf("%s %s (%d bytes, sha256 %s) by %s; %s", inst.Package.Arch, inst.Package.File, inst.Size, inst.SHA256, method, proof)}},
		{Step: StepInstall, Commands: []string{
			writeFileCmd(work+`\`+task+".cmd") + "   <batch: \"" + exe + "\" " + strings.Join(switches, " ") + ">",
			taskDeleteCmd(task), `schtasks /create /tn "iisremedy-` + task + `" /tr "` + work + `\` + task + `.cmd" /sc once /st <host time + 2 min> /sd <date in the host's order> /ru SYSTEM`,
			taskRunCmd(task), typeCmd(work+`\`+task+".marker") + "   (polled)", taskDeleteCmd(task)},
			Notes: []string{"exit codes " + ints(pb.Installer.SuccessExitCodes) + " succeed; on failure the tail of " + pb.Installer.Log + " is the evidence"}},
		{Step: StepReboot, Commands: []string{shutdownCmd(opts.Timing.RebootDelay.D(), opts.Timing.RebootReason, "<run>")},
			Notes: []string{fmt.Sprintf("the host must come back with a newer LastBootUpTime within %s", opts.Timing.Reboot.D())}}}
	var pools []string
	for _, p := range f.Pools {
		if p.AutoStart {
			pools = append(pools, p.Name)
		}
	}
	pcmds := []string{w3svcQueryCmd, poolsCmd}
	for _, p := range pools {
		if safeName(p) {
			pcmds = append(pcmds, poolStartCmd(p)+"   (if not started)")
		}
	}
	ph.Steps = append(ph.Steps,
		PlanStep{Step: StepPools, Commands: pcmds, Notes: []string{"W3SVC started if stopped (net start w3svc); auto-start pools: " + strings.Join(pools, ", ")}},
		PlanStep{Step: StepVerify, Commands: []string{sitesCmd, poolsCmd, eventsCmd, checks.ProbeCommand()},
			Notes: []string{fmt.Sprintf("warm-up requests to each site from %s, then a soak of %s watching pools and W3SVC 1009/1002; the core files must be at the baseline", warmupFrom(opts.Warmup), opts.Timing.Soak.D())}})
}

func warmupFrom(w string) string {
	if w == "local" {
		return "the host itself"
	}
	return "this machine"
}

func ints(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// stageDiskNeed is what staging an installer of size bytes takes on the host: the file, plus
// its base64 text while a host without PowerShell decodes it with certutil, or its chunk files
// while it is assembled after a pull.
func stageDiskNeed(size int64, method string, powershell bool) int64 {
	switch {
	case powershell:
		return size
	case method == StagePull:
		return 2 * size
	case method == StageShare:
		return size
	}
	return size + (size+2)/3*4 + size/(pushLine*3/4)*2
}

// fingerprintFacts are the facts a plan rests on: what decides the verdict and the installer,
// not what changes by itself (events, pool states, boot time, free disk).
func fingerprintFacts(f *checks.Facts) map[string]string {
	m := map[string]string{
		"os":           fmt.Sprintf("%s build %s service pack %d", f.OS.Version, f.OS.Build, f.OS.ServicePack),
		"architecture": f.Arch,
		"language":     f.Language,
		"system root":  f.SystemRoot,
		"hotfixes":     strings.Join(sortedCopy(f.Hotfixes), ","),
	}
	if f.IIS != nil {
		m["iis"] = fmt.Sprintf("%d.%d", f.IIS.MajorVersion, f.IIS.MinorVersion)
	}
	for name, v := range f.Files {
		m["file "+name] = v
	}
	return m
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

func fingerprint(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\n", k, m[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// driftOf names the first fact (in name order) that differs between the plan and now.
func driftOf(ph PlanHost, now *checks.Facts) string {
	if ph.Fingerprint == "" {
		return "the plan has no facts for this host"
	}
	cur := fingerprintFacts(now)
	if fingerprint(cur) == ph.Fingerprint {
		return ""
	}
	keys := map[string]bool{}
	for k := range ph.Facts {
		keys[k] = true
	}
	for k := range cur {
		keys[k] = true
	}
	var names []string
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		was, isNow := ph.Facts[k], cur[k]
		if was != isNow {
			return fmt.Sprintf("%s: %s, the plan saw %s", k, orNone(isNow), orNone(was))
		}
	}
	return "the facts' fingerprint differs"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// digest is the SHA-256 of the plan's JSON with an empty Digest.
func (p *Plan) digest() string {
	c := *p
	c.Digest = ""
	b, err := json.Marshal(c)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Write writes the plan as indented JSON.
func (p *Plan) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

// PlanError is a plan file that cannot be applied, with the line of the problem when known.
type PlanError struct {
	File string
	Line int
	Msg  string
}

func (e *PlanError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// maxPlanSize bounds a plan file: a plan of 10,000 hosts is a few tens of megabytes.
const maxPlanSize = 256 << 20

// ReadPlan reads and checks a plan file: JSON of this version, no unknown fields, and a digest
// that matches its content (a plan edited after review is refused).
func ReadPlan(file string, r io.Reader) (*Plan, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxPlanSize+1))
	if err != nil {
		return nil, &PlanError{File: file, Msg: err.Error()}
	}
	if len(data) > maxPlanSize {
		return nil, &PlanError{File: file, Msg: fmt.Sprintf("larger than %d bytes: not a plan", maxPlanSize)}
	}
	var probe struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, jsonError(file, data, err)
	}
	if probe.Version == nil {
		return nil, &PlanError{File: file, Msg: "version: missing; not an iisremedy plan"}
	}
	if *probe.Version != PlanVersion {
		return nil, &PlanError{File: file, Msg: fmt.Sprintf("version: %d, this iisremedy reads version %d plans; make the plan again", *probe.Version, PlanVersion)}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Plan
	if err := dec.Decode(&p); err != nil {
		return nil, jsonError(file, data, err)
	}
	if p.Digest == "" || p.Digest != p.digest() {
		return nil, &PlanError{File: file, Msg: "digest: the plan does not match its digest: it was edited after it was made (and reviewed); make a new plan"}
	}
	if err := p.check(); err != nil {
		return nil, &PlanError{File: file, Msg: err.Error()}
	}
	return &p, nil
}

// check refuses a plan whose values the engine could not act on safely.
func (p *Plan) check() error {
	switch p.Options.Stage {
	case StagePush, StagePull, StageShare:
	default:
		return fmt.Errorf("options.stage: %q: want push, pull or share", p.Options.Stage)
	}
	if err := CheckWorkDir(p.Options.WorkDir); err != nil {
		return fmt.Errorf("options.work_dir: %v", err)
	}
	seen := map[string]bool{}
	for i, h := range p.Hosts {
		if seen[h.Host] {
			return fmt.Errorf("hosts[%d].host: %s is in the plan twice", i, h.Host)
		}
		seen[h.Host] = true
		if h.Action == ActionRemediate && (h.Installer == nil || len(h.Installer.SHA256) != 64) {
			return fmt.Errorf("hosts[%d].installer: a remediated host needs its installer", i)
		}
	}
	return nil
}

// jsonError locates a JSON decoding error by line.
func jsonError(file string, data []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return &PlanError{File: file, Line: lineOf(data, syn.Offset), Msg: "not valid JSON: " + syn.Error()}
	case errors.As(err, &typ):
		return &PlanError{File: file, Line: lineOf(data, typ.Offset), Msg: fmt.Sprintf("%s: want %s, got %s", typ.Field, typ.Type, typ.Value)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &PlanError{File: file, Msg: "not valid JSON: unexpected end"}
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return &PlanError{File: file, Msg: "unknown field " + f + ": the plan was edited, or made by another version"}
	}
	return &PlanError{File: file, Msg: msg}
}

func lineOf(data []byte, offset int64) int {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	return bytes.Count(data[:offset], []byte("\n")) + 1
}

// Remediated counts the hosts the plan remediates.
func (p *Plan) Remediated() int {
	n := 0
	for _, h := range p.Hosts {
		if h.Action == ActionRemediate {
			n++
		}
	}
	return n
}

package win2003

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/iisremedy/iisremedy/playbooks"
)

// scenario describes one named kind of host.
type scenario struct {
	verdict playbooks.Verdict
	weight  int // share in a mix; 0 = never in a mix
	build   func(s *Spec, r *rand.Rand, q Quirks)
	outcome Outcome
}

// Outcome is the remediation outcome a correct engine reaches on a host of a scenario.
type Outcome struct {
	// Outcome is "remediated", "not-planned" (the plan leaves the host alone) or "failed".
	Outcome string
	// FailedStep is the step a failed remediation stops at: "stage", "install", "reboot" or
	// "verify" ("" unless failed).
	FailedStep string
	// Reason says why the host is left alone or fails ("" when remediated).
	Reason string
	// WithAtRisk is the outcome when the plan also takes at-risk hosts (--include at-risk), ""
	// when it is the same.
	WithAtRisk string
}

var (
	remediated = Outcome{Outcome: "remediated"}
	notNeeded  = func(why string) Outcome { return Outcome{Outcome: "not-planned", Reason: why} }
)

// mismatched sets IIS files from the original media on an SP2 OS (docs/design.md §1).
func mismatched(s *Spec, r *rand.Rand, _ Quirks) {
	s.IISLevel = VersionSP1
	if r.IntN(3) == 0 {
		s.IISLevel = VersionRTM
	}
}

func withTrigger(s *Spec, kb string, q Quirks) {
	if s.Overrides == nil {
		s.Overrides = map[string]string{}
	}
	switch kb {
	case "KB982666":
		s.Overrides["w3core.dll"] = VersionKB982666
		s.Overrides["w3dt.dll"] = VersionKB982666
	case "KB973917":
		s.Overrides["w3core.dll"] = q.VersionKB973917
	}
	s.Hotfixes = append(s.Hotfixes, kb)
}

func affected(s *Spec, r *rand.Rand, q Quirks) {
	mismatched(s, r, q)
	withTrigger(s, "KB982666", q)
}

var scenarios = map[string]scenario{
	"affected": {playbooks.Affected, 14, affected, remediated},
	// kb973917: the December 2009 twin (w3core.dll of KB973917). Affected when diagnosed with all
	// playbooks (kb973917's finds it; kb982666's alone would say at-risk).
	"kb973917": {playbooks.Affected, 2, func(s *Spec, r *rand.Rand, q Quirks) { mismatched(s, r, q); withTrigger(s, "KB973917", q) }, remediated},
	"mismatch": {playbooks.Mismatch, 5, func(s *Spec, r *rand.Rand, q Quirks) { affected(s, r, q); s.NoTrickle = true }, remediated},
	"at-risk": {playbooks.AtRisk, 10, mismatched, Outcome{Outcome: "not-planned",
		Reason: "at risk only: the trigger update is not installed; plans take such hosts with --include at-risk", WithAtRisk: "remediated"}},
	"other-cause": {playbooks.OtherCause, 5, func(s *Spec, r *rand.Rand, q Quirks) { withTrigger(s, "KB982666", q); s.OtherCause = true },
		notNeeded("the workers crash although the binaries match: SP2 is not the cure")},
	"healthy": {playbooks.Healthy, 28, func(s *Spec, r *rand.Rand, q Quirks) {
		withTrigger(s, "KB982666", q)
		// post-SP2 versions seen on a real host (docs/facts.md §1.2)
		s.Overrides["asp.dll"] = "6.0.3790.4735"
		s.Overrides["infocomm.dll"] = "6.0.3790.4215"
	}, notNeeded("healthy")},
	"sp1": {playbooks.NotApplicable, 4, func(s *Spec, r *rand.Rand, q Quirks) { s.ServicePack = 1; s.IISLevel = VersionSP1 },
		notNeeded("not applicable: Service Pack 1")},
	"no-iis": {playbooks.NotApplicable, 4, func(s *Spec, r *rand.Rand, q Quirks) {
		s.IIS = false
		s.Pools = nil
	}, notNeeded("not applicable: IIS is not installed")},
	"x64":     {playbooks.Affected, 4, func(s *Spec, r *rand.Rand, q Quirks) { affected(s, r, q); s.Arch = "AMD64" }, remediated},
	"spanish": {playbooks.Affected, 4, func(s *Spec, r *rand.Rand, q Quirks) { affected(s, r, q); s.Language = "0C0A"; s.TZOffset = 60 }, remediated},
	// x64-spanish: outside the mix; the host that needs both the x64 and the Spanish installer,
	// and a day-first task date.
	"x64-spanish": {playbooks.Affected, 0, func(s *Spec, r *rand.Rand, q Quirks) {
		affected(s, r, q)
		s.Arch, s.Language, s.TZOffset = "AMD64", "0C0A", 60
	}, remediated},
	"winnt-root": {playbooks.Affected, 3, func(s *Spec, r *rand.Rand, q Quirks) { affected(s, r, q); s.SystemRoot = `D:\WINNT` }, remediated},
	// installer-fails: SP2's own check fails (the INF failure of the sample in docs/facts.md §2.3)
	// on a host with room to spare, so the engine's disk check passes and the install step fails.
	"installer-fails": {playbooks.Affected, 3, func(s *Spec, r *rand.Rand, q Quirks) {
		affected(s, r, q)
		s.InstallerFails = "inf"
	}, Outcome{Outcome: "failed", FailedStep: "install", Reason: "the SP2 installer exits 1603 (SetupVerifyInfFile failed, svcpack.log)"}},
	"never-returns": {playbooks.Affected, 2, func(s *Spec, r *rand.Rand, q Quirks) { affected(s, r, q); s.NeverReturns = true },
		Outcome{Outcome: "failed", FailedStep: "reboot", Reason: "the host never comes back from the restart"}},
	// flaky drops 2% of connections and answers 2% of requests with a 500: about one probe in
	// four meets a failure, which a client that retries its read-only probe rides out.
	"flaky": {playbooks.Affected, 4, func(s *Spec, r *rand.Rand, q Quirks) {
		affected(s, r, q)
		s.DropRate = 0.02
		s.Fail500Rate = 0.02
	}, Outcome{Outcome: "remediated", Reason: "provided the engine rides out the dropped connections and HTTP 500s on its commands, not only on the probe"}},
	// no-powershell: a host without WMF's PowerShell 2.0 (its WinRM from Server 2003 R2's
	// optional component, docs/facts.md §6.1): the probe's powershell section finds no key, so
	// staging falls back to findstr and certutil (push) or the VBScript (pull), and the proof
	// to certutil -hashfile or wmic datafile.
	"no-powershell": {playbooks.Affected, 3, func(s *Spec, r *rand.Rand, q Quirks) {
		affected(s, r, q)
		s.PowerShell = false
		s.Hotfixes = slices.DeleteFunc(s.Hotfixes, func(kb string) bool { return kb == "KB968930" })
	}, remediated},
	// pending-reboot: an earlier update left a file replacement for the next boot.
	"pending-reboot": {playbooks.Affected, 3, func(s *Spec, r *rand.Rand, q Quirks) { affected(s, r, q); s.PendingReboot = true }, remediated},
}

// ScenarioOutcome reports the remediation outcome a correct engine reaches on a host of the
// named scenario with the default plan.
func ScenarioOutcome(name string) (Outcome, bool) {
	s, ok := scenarios[name]
	return s.outcome, ok
}

// Scenarios lists the scenario names, sorted.
func Scenarios() []string {
	names := make([]string, 0, len(scenarios))
	for n := range scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ScenarioVerdict reports the verdict a correct diagnosis gives for a host of the named scenario.
func ScenarioVerdict(name string) (playbooks.Verdict, bool) {
	s, ok := scenarios[name]
	return s.verdict, ok
}

// ScenarioSpec builds the Spec of a named scenario with the default quirks; seed varies the
// details reproducibly.
func ScenarioSpec(name string, seed int64) (Spec, error) {
	return scenarioSpec(name, seed, DefaultQuirks())
}

func scenarioSpec(name string, seed int64, q Quirks) (Spec, error) {
	sc, ok := scenarios[name]
	if !ok {
		return Spec{}, fmt.Errorf("win2003: unknown scenario %q", name)
	}
	r := rand.New(rand.NewPCG(uint64(seed), 0x1150eed))
	s := Spec{
		Scenario:      name,
		Verdict:       sc.verdict,
		Arch:          "x86",
		Language:      "0409",
		SystemRoot:    `C:\WINDOWS`,
		ServicePack:   2,
		IIS:           true,
		IISLevel:      VersionSP2,
		PowerShell:    true,
		DiskSize:      int64(20+r.IntN(60)) << 30,
		FreeDisk:      int64(3+r.IntN(20)) << 30,
		TZOffset:      []int{-300, -360, -480, 0}[r.IntN(4)],
		WMICInstalled: r.IntN(2) == 0,
		BootAgo:       time.Duration(5+r.IntN(24*20)) * time.Hour,
		Hotfixes:      []string{"KB968930"},
		Pools:         []string{"DefaultAppPool"},
	}
	extra := []string{"AppPool_Intranet", "WsusPool", "ReportingPool"}
	s.Pools = append(s.Pools, extra[:r.IntN(len(extra)+1)]...)
	sc.build(&s, r, q)
	if !s.IIS {
		s.Pools = nil
	}
	return s, nil
}

// NewScenario builds a host of the named scenario. opts.Seed varies the details reproducibly.
func NewScenario(name string, opts Options) (*Host, error) {
	q := DefaultQuirks()
	if opts.Quirks != nil {
		q = opts.Quirks.withDefaults()
	}
	spec, err := scenarioSpec(name, opts.Seed, q)
	if err != nil {
		return nil, err
	}
	return New(spec, opts)
}

// Mix returns a scenario name for each of n hosts, reproducibly from seed. When n is at least the
// number of mixed scenarios (MixScenarios) every one appears at least once; the rest follow the
// scenarios' weights (mostly healthy, affected and at-risk hosts).
func Mix(n int, seed int64) []string {
	if n <= 0 {
		return nil
	}
	r := rand.New(rand.NewPCG(uint64(seed), 0x313c))
	names := Scenarios()
	out := make([]string, n)
	total := 0
	for _, nm := range names {
		total += scenarios[nm].weight
	}
	for i := range out {
		x := r.IntN(total)
		for _, nm := range names {
			x -= scenarios[nm].weight
			if x < 0 {
				out[i] = nm
				break
			}
		}
	}
	if mixed := MixScenarios(); n >= len(mixed) {
		// every mixed scenario once, at seeded positions
		perm := r.Perm(n)
		for i, nm := range mixed {
			out[perm[i]] = nm
		}
	}
	return out
}

// MixScenarios lists the scenarios Mix draws from (those with a weight).
func MixScenarios() []string {
	var out []string
	for _, nm := range Scenarios() {
		if scenarios[nm].weight > 0 {
			out = append(out, nm)
		}
	}
	return out
}

package playbooks

// Verdict is the outcome of diagnosing one host, as the verdict table in docs/design.md §5.4 names it.
// The lab uses the same words to record what a correct diagnosis of each simulated host gives.
type Verdict string

// The verdicts, in the order of the table in docs/design.md §5.4.
const (
	Affected      Verdict = "affected"
	Mismatch      Verdict = "mismatch"
	AtRisk        Verdict = "at-risk"
	OtherCause    Verdict = "other-cause"
	Healthy       Verdict = "healthy"
	NotApplicable Verdict = "not-applicable"
	Unreachable   Verdict = "unreachable"
	AuthFailed    Verdict = "auth-failed"
	ProbeFailed   Verdict = "probe-failed"
	// Skipped hosts were not probed, or not to the end, because the run was interrupted or
	// stopped first; nothing is known about them.
	Skipped Verdict = "skipped"
)

package checks

import (
	"strconv"
	"strings"
)

// Service states (SERVICE_STATUS.dwCurrentState).
const (
	serviceStopped         = 1
	serviceStartPending    = 2
	serviceStopPending     = 3
	serviceRunning         = 4
	serviceContinuePending = 5
	servicePausePending    = 6
	servicePaused          = 7
)

// serviceStateName names a service state in English for evidence text.
func serviceStateName(state int) string {
	switch state {
	case serviceStopped:
		return "stopped"
	case serviceStartPending:
		return "start pending"
	case serviceStopPending:
		return "stop pending"
	case serviceRunning:
		return "running"
	case serviceContinuePending:
		return "continue pending"
	case servicePausePending:
		return "pause pending"
	case servicePaused:
		return "paused"
	}
	return "unknown"
}

// parseSCQuery returns the state of the service sc query printed (SERVICE_STATUS
// dwCurrentState, 1..7). Labels are localized on non-English Windows (STATE, ÉTAT,
// STATUS...), so it reads the structure, not the words: the first unindented
// "label: value" line names the service (a DISPLAY_NAME line may follow); then the indented
// "label : value" lines are, in order, TYPE, STATE, WIN32_EXIT_CODE, ...; the continuation
// line "(STOPPABLE, ...)" has no colon. Values begin with the number ("4  RUNNING" → 4). ok
// is false when no state was found (e.g. the service does not exist: sc prints an error and
// exits 1060).
func parseSCQuery(text string) (state int, ok bool) {
	var fields []string
	named := false
	for l := range lines(text) {
		c := strings.IndexByte(l, ':')
		if c <= 0 {
			continue
		}
		label, value := strings.TrimSpace(l[:c]), strings.TrimSpace(l[c+1:])
		if label == "" || strings.ContainsAny(label, "[]") {
			continue // "[SC] OpenService FAILED 1060:" and the like
		}
		indented := l[0] == ' ' || l[0] == '\t'
		switch {
		case !indented && len(fields) > 0:
			return scState(fields) // a second service: read only the first
		case !indented:
			named = true
		case named:
			fields = append(fields, value)
		}
	}
	return scState(fields)
}

// scState reads the state from the second field (after TYPE) of sc's indented lines.
func scState(fields []string) (int, bool) {
	if len(fields) < 2 {
		return 0, false
	}
	tok := strings.Fields(fields[1])
	if len(tok) == 0 {
		return 0, false
	}
	state, err := strconv.Atoi(tok[0])
	if err != nil || state < serviceStopped || state > servicePaused {
		return 0, false
	}
	return state, true
}

package checks

import (
	"strconv"
	"strings"
)

// ServiceStatus is what sc query printed for one service.
type ServiceStatus struct {
	Name  string
	Type  int
	State int // 1 stopped, 2 start pending, 3 stop pending, 4 running, 5 continue pending, 6 pause pending, 7 paused
	// Win32ExitCode and ServiceExitCode are -1 when not printed.
	Win32ExitCode   int
	ServiceExitCode int
}

// Service states (SERVICE_STATUS.dwCurrentState).
const (
	ServiceStopped         = 1
	ServiceStartPending    = 2
	ServiceStopPending     = 3
	ServiceRunning         = 4
	ServiceContinuePending = 5
	ServicePausePending    = 6
	ServicePaused          = 7
)

// ServiceStateName names a service state in English for evidence text.
func ServiceStateName(state int) string {
	switch state {
	case ServiceStopped:
		return "stopped"
	case ServiceStartPending:
		return "start pending"
	case ServiceStopPending:
		return "stop pending"
	case ServiceRunning:
		return "running"
	case ServiceContinuePending:
		return "continue pending"
	case ServicePausePending:
		return "pause pending"
	case ServicePaused:
		return "paused"
	}
	return "unknown"
}

// ParseSCQuery parses sc query output for one service. Labels are localized on non-English
// Windows (STATE, ÉTAT, STATUS...), so it reads the structure, not the words: the first
// unindented "label: value" line names the service; then the indented "label : value" lines
// are, in order, TYPE, STATE, WIN32_EXIT_CODE, SERVICE_EXIT_CODE, CHECKPOINT, WAIT_HINT; the
// continuation line "(STOPPABLE, ...)" has no colon. Values begin with the number
// ("4  RUNNING" → 4). ok is false when no state was found (e.g. the service does not exist:
// sc prints an error and exits 1060).
func ParseSCQuery(text string) (st ServiceStatus, ok bool) {
	st = ServiceStatus{Win32ExitCode: -1, ServiceExitCode: -1}
	var fields []string
	named := false
	for _, l := range lines(text) {
		if strings.TrimSpace(l) == "" {
			continue
		}
		c := strings.IndexByte(l, ':')
		if c <= 0 {
			continue
		}
		label, value := strings.TrimSpace(l[:c]), strings.TrimSpace(l[c+1:])
		if label == "" || strings.ContainsAny(label, "[]") {
			continue // "[SC] OpenService FAILED 1060:" and the like
		}
		indented := l[0] == ' ' || l[0] == '\t'
		if !indented {
			if named {
				break // a second service: read only the first
			}
			st.Name, named = value, true
			continue
		}
		if !named {
			continue
		}
		fields = append(fields, value)
	}
	if len(fields) < 2 {
		return st, false
	}
	num := func(i int) (int, bool) {
		if i >= len(fields) {
			return 0, false
		}
		tok := strings.Fields(fields[i])
		if len(tok) == 0 {
			return 0, false
		}
		t := tok[0]
		var n int64
		var err error
		if len(t) > 2 && (t[:2] == "0x" || t[:2] == "0X") {
			n, err = strconv.ParseInt(t[2:], 16, 64)
		} else {
			n, err = strconv.ParseInt(t, 10, 64)
		}
		if err != nil || n < -1<<31 || n > 1<<32-1 {
			return 0, false
		}
		return int(n), true
	}
	st.Type, _ = num(0)
	state, good := num(1)
	if !good || state < 1 || state > 7 {
		return st, false
	}
	st.State = state
	if v, good := num(2); good {
		st.Win32ExitCode = v
	}
	if v, good := num(3); good {
		st.ServiceExitCode = v
	}
	return st, true
}

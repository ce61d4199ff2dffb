package wsman

import (
	"context"
	"encoding/base64"
	"net"
	"net/http"
	"strings"
	"time"
)

// dispatch runs one parsed WS-Man operation for an authenticated user and returns the HTTP
// status and SOAP reply (status 0: the client went away, send nothing).
func (s *Server) dispatch(r *http.Request, user string, body []byte) (int, []byte) {
	req, err := parseRequest(body)
	if err != nil {
		s.logf("wsman: %v", err)
		return s.faultReply(r, "", faultSchema())
	}
	if req.notUnderstood != nil {
		return http.StatusInternalServerError, mustUnderstandFault(req.messageID, req.notUnderstood)
	}
	if s.AccessDenied {
		return s.faultReply(r, req.messageID, faultAccessDenied())
	}
	if req.resourceURI != resourceCmd {
		return s.faultReply(r, req.messageID, faultActionNotSupported(req.resourceURI))
	}
	if req.timeout > s.maxTimeout() {
		return s.faultReply(r, req.messageID, faultTimeoutTooLong(req.timeout, s.maxTimeout()))
	}
	s.sweepIdle()
	if sh := s.shell(req.shellID); sh != nil {
		sh.begin()
		defer func() { sh.end(s.now()) }()
	}
	// MaxConcurrentOperationsPerUser counts requests in progress (an approximation of Windows' operations).
	key := strings.ToLower(user)
	s.mu.Lock()
	if s.inflight[key] >= s.maxOperations() {
		s.mu.Unlock()
		return s.faultReply(r, req.messageID, faultOperationQuota(s.maxOperations()))
	}
	s.inflight[key]++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight[key]--
		s.mu.Unlock()
	}()

	var f *fault
	var action, reply string
	switch req.action {
	case actionCreate:
		s.c.creates.Add(1)
		action = nsTransfer + "/CreateResponse"
		reply, f = s.create(r, key, user)
	case actionDelete:
		s.c.deletes.Add(1)
		action = nsTransfer + "/DeleteResponse"
		f = s.deleteShell(r.Context(), req.shellID)
	case actionCommand:
		s.c.commands.Add(1)
		action = nsShell + "/CommandResponse"
		reply, f = s.command(req)
	case actionSend:
		s.c.sends.Add(1)
		action = nsShell + "/SendResponse"
		reply, f = s.send(r.Context(), req)
	case actionReceive:
		n := s.c.receives.Add(1)
		action = nsShell + "/ReceiveResponse"
		if s.TimeoutOnReceive > 0 && n == int64(s.TimeoutOnReceive) {
			f = faultTimedOut()
			break
		}
		reply, f = s.receive(r, req)
		if f == nil && reply == "" {
			return 0, nil
		}
	case actionSignal:
		s.c.signals.Add(1)
		action = nsShell + "/SignalResponse"
		reply, f = s.signal(r, req)
	default:
		f = faultActionNotSupported(req.action)
	}
	s.logf("wsman: %s %s shell=%s fault=%v", r.RemoteAddr, req.action[strings.LastIndex(req.action, "/")+1:], req.shellID, f != nil)
	if f != nil {
		return s.faultReply(r, req.messageID, f)
	}
	return http.StatusOK, envelope(envelopeOpen, action, req.messageID, "", reply)
}

func (s *Server) create(r *http.Request, key, user string) (string, *fault) {
	ip := r.RemoteAddr
	if h, _, err := net.SplitHostPort(ip); err == nil {
		ip = h
	}
	sh := &shell{id: newUUID(), owner: user, clientIP: ip, commands: map[string]*command{}, lastActive: s.now(),
		job: &Job{user: user, maxProcs: s.maxProcesses(), maxMemMB: s.maxMemoryMB()}}
	s.mu.Lock()
	n := 0
	for _, o := range s.shells {
		if strings.ToLower(o.owner) == key {
			n++
		}
	}
	if n >= s.maxShells() {
		s.mu.Unlock()
		return "", faultShellQuota(s.maxShells())
	}
	s.shells[sh.id] = sh
	s.mu.Unlock()
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return renderShell(sh, scheme+"://"+r.Host+"/wsman", s.idleTimeout()), nil
}

// begin and end bracket a request naming the shell: a shell is idle only while no request
// names it (a Receive waiting for output is activity).
func (sh *shell) begin() {
	sh.mu.Lock()
	sh.busy++
	sh.mu.Unlock()
}

func (sh *shell) end(now time.Time) {
	sh.mu.Lock()
	sh.busy--
	sh.lastActive = now
	sh.mu.Unlock()
}

// sweepIdle deletes the shells no request has named for IdleTimeout, killing their processes,
// as the service does when a shell's idle timer ends.
func (s *Server) sweepIdle() {
	now, limit := s.now(), s.idleTimeout()
	var idle []*shell
	s.mu.Lock()
	for id, sh := range s.shells {
		sh.mu.Lock()
		expired := sh.busy == 0 && now.Sub(sh.lastActive) > limit
		sh.mu.Unlock()
		if expired {
			idle = append(idle, sh)
			delete(s.shells, id)
		}
	}
	s.mu.Unlock()
	for _, sh := range idle {
		s.logf("wsman: shell %s idle for more than %s: deleted", sh.id, limit)
		sh.close()
	}
}

func (s *Server) shell(id string) *shell {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shells[strings.ToUpper(id)]
}

// deleteShell kills the shell's processes and answers once they have ended (or the client
// went away), so that what they wrote is on disk when the client looks next [I].
func (s *Server) deleteShell(ctx context.Context, id string) *fault {
	s.mu.Lock()
	sh := s.shells[strings.ToUpper(id)]
	delete(s.shells, strings.ToUpper(id))
	s.mu.Unlock()
	if sh == nil {
		return faultShellNotFound(id)
	}
	sh.close()
	sh.mu.Lock()
	cmds := sh.commands
	sh.mu.Unlock()
	for _, c := range cmds {
		select {
		case <-c.finished:
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// close kills every process of the shell.
func (sh *shell) close() {
	sh.mu.Lock()
	sh.closed = true
	cmds := sh.commands
	sh.mu.Unlock()
	for _, c := range cmds {
		c.terminate()
	}
}

// commandOf finds the shell and the command a Send/Receive/Signal names.
func (s *Server) commandOf(req *request, id string) (*shell, *command, *fault) {
	sh := s.shell(req.shellID)
	if sh == nil {
		return nil, nil, faultShellNotFound(req.shellID)
	}
	sh.mu.Lock()
	c := sh.commands[strings.ToUpper(id)]
	sh.mu.Unlock()
	if c == nil {
		return sh, nil, faultInvalidParameter("CommandId " + id)
	}
	return sh, c, nil
}

// command starts rsp:Command with its rsp:Arguments joined by spaces (CDATA or escaped text,
// docs/winrm-protocol.md §1.2).
func (s *Server) command(req *request) (string, *fault) {
	sh := s.shell(req.shellID)
	if sh == nil {
		return "", faultShellNotFound(req.shellID)
	}
	if req.body == nil || req.body.local != "CommandLine" || req.body.space != nsShell {
		return "", faultSchema()
	}
	parts := []string{strings.TrimSpace(req.body.child(nsShell, "Command").Text())}
	for _, a := range req.body.all(nsShell, "Arguments") {
		parts = append(parts, a.Text())
	}
	line := strings.Join(parts, " ")
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		return "", faultShellNotFound(req.shellID)
	}
	c := startCommand(s.host(), line, sh.job)
	sh.commands[c.id] = c
	sh.mu.Unlock()
	return `<rsp:CommandResponse><rsp:CommandId>` + c.id + `</rsp:CommandId></rsp:CommandResponse>`, nil
}

// stdinPipe is how much of a command's stdin may wait for the process to read it before a Send
// is answered, like the pipe between the service and the process.
const stdinPipe = 64 << 10

// send feeds base64 stdin to the process; End="true" closes stdin (§1.2, §1.6). It is answered
// once the process has taken the data in (up to stdinPipe bytes may still wait).
func (s *Server) send(ctx context.Context, req *request) (string, *fault) {
	if req.body == nil || req.body.local != "Send" {
		return "", faultSchema()
	}
	if sh := s.shell(req.shellID); sh == nil {
		return "", faultShellNotFound(req.shellID)
	}
	for _, st := range req.body.all(nsShell, "Stream") {
		_, c, f := s.commandOf(req, st.attr("CommandId"))
		if f != nil {
			return "", f
		}
		data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(st.Text()))
		if err != nil {
			return "", faultSchema()
		}
		_, _ = c.stdin.Write(data)
		if st.attr("End") == "true" {
			c.stdin.Close()
		}
		c.stdin.waitBelow(ctx, stdinPipe, c.finished)
	}
	return `<rsp:SendResponse/>`, nil // testdata/soap/pywinrm_send_response.xml
}

// receive long-polls for output. An empty reply with no fault means the client went away.
func (s *Server) receive(r *http.Request, req *request) (string, *fault) {
	if req.body == nil || req.body.local != "Receive" {
		return "", faultSchema()
	}
	id := req.body.child(nsShell, "DesiredStream").attr("CommandId")
	sh, c, f := s.commandOf(req, id)
	if f != nil {
		return "", f
	}
	// Raw bytes that fit the client's MaxEnvelopeSize once base64-encoded, leaving 2 KiB for the
	// envelope (docs/winrm-protocol.md §3.3 "Envelope sizes": Windows spreads output over several replies).
	env := req.maxEnvelope
	if env <= 0 {
		env = 153600
	}
	budget := max((env-2048)/4*3, 1024)
	res := c.receive(r.Context(), s.receiveWait(req.timeout), budget)
	if res == nil {
		if r.Context().Err() != nil {
			return "", nil
		}
		return "", faultTimedOut()
	}
	sh.mu.Lock()
	closed := sh.closed
	sh.mu.Unlock()
	if closed && !res.done {
		return "", faultShellNotFound(req.shellID)
	}
	return renderReceive(c.id, res), nil
}

// signal handles terminate (and ctrl_c the same way); it succeeds after Done too, since
// masterzen always sends it (docs/winrm-protocol.md §1.6, §7.3).
func (s *Server) signal(r *http.Request, req *request) (string, *fault) {
	if req.body == nil || req.body.local != "Signal" {
		return "", faultSchema()
	}
	_, c, f := s.commandOf(req, req.body.attr("CommandId"))
	if f != nil {
		return "", f
	}
	c.terminate()
	select {
	case <-c.finished:
	case <-r.Context().Done():
	}
	return `<rsp:SignalResponse/>`, nil // testdata/soap/pywinrm_signal_response.xml
}

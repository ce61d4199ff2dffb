package lab

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Each host serves its IIS web sites over real HTTP on its own address, answering as the model
// says (win2003.Host.RequestHost): 200 from a worker process, 503 while the pool is stopped or
// its workers die at start, 400 for a host name no site takes, and a reset connection when
// nothing listens (the host is down, W3SVC is stopped).

// listenSites opens a listener for each port the host's sites bind. The first time it chooses
// the addresses: the metabase's port on the host's address, or a free port when that cannot be
// bound (port 80 needs privileges) or the fleet gives free ports; the metabase then shows the
// port actually served. Called with h.mu held.
func (h *Host) listenSites() error {
	if h.sites == nil {
		moved := map[int]int{}
		var ports []int
		for _, b := range h.Model.SiteBindings() {
			if !slices.Contains(ports, b.Port) {
				ports = append(ports, b.Port)
			}
		}
		for _, port := range ports {
			var ln net.Listener
			var err error
			if !h.freePorts {
				ln, err = net.Listen("tcp", net.JoinHostPort(h.ip, strconv.Itoa(port)))
			}
			if h.freePorts || err != nil {
				if ln, err = net.Listen("tcp", net.JoinHostPort(h.ip, "0")); err != nil {
					return &ListenError{Addr: net.JoinHostPort(h.ip, "0"), Err: err}
				}
			}
			got := ln.Addr().(*net.TCPAddr).Port
			if got != port {
				moved[port] = got
			}
			s := &site{addr: ln.Addr().String()}
			h.sites = append(h.sites, s)
			h.serveSite(s, got, ln)
		}
		if len(moved) > 0 {
			h.Model.RebindPorts(moved)
		}
		h.Sites = nil
		for _, b := range h.Model.SiteBindings() {
			s := net.JoinHostPort(h.ip, strconv.Itoa(b.Port))
			if b.Host != "" {
				s += " " + b.Host
			}
			h.Sites = append(h.Sites, s)
		}
		return nil
	}
	for _, s := range h.sites {
		if s.srv != nil {
			continue
		}
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			return &ListenError{Addr: s.addr, Err: err}
		}
		_, p, _ := net.SplitHostPort(s.addr)
		port, _ := strconv.Atoi(p)
		h.serveSite(s, port, ln)
	}
	return nil
}

func (h *Host) serveSite(s *site, port int, ln net.Listener) {
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serveRequest(w, r, port) }),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          discardLog,
	}
	srv := s.srv
	go func() { _ = srv.Serve(ln) }()
}

// serveRequest answers one request to a site port. The headers and bodies are IIS 6's as
// commonly seen [I]: a page from a worker carries "Server: Microsoft-IIS/6.0"; HTTP.sys's own
// answers (503 for a stopped pool, 400 for an unknown host name) carry
// "Server: Microsoft-HTTPAPI/1.0" and a one-line HTML body.
func (h *Host) serveRequest(w http.ResponseWriter, r *http.Request, port int) {
	status := h.Model.RequestHost(port, r.Host)
	switch status {
	case 0:
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case http.StatusOK:
		w.Header().Set("Server", "Microsoft-IIS/6.0")
		w.Header().Set("X-Powered-By", "ASP.NET")
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		fmt.Fprint(w, "<html><head><title>Under Construction</title></head><body>Under Construction</body></html>")
	default:
		text := "Service Unavailable"
		if status == http.StatusBadRequest {
			text = "Bad Request (Invalid Hostname)"
		}
		w.Header().Set("Server", "Microsoft-HTTPAPI/1.0")
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<h1>%s</h1>", text)
	}
}

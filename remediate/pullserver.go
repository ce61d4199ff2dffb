package remediate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// PullServer serves installer files to the hosts that stage by pull: a short-lived HTTP server
// on the control machine, one random token per host and file, byte ranges for resuming, and
// nothing else. A token is revoked once its host has proven the file; a wrong or revoked token,
// or any other path, is refused.
type PullServer struct {
	// URLHost is host:port as the hosts reach the server.
	URLHost string

	ln     net.Listener
	srv    *http.Server
	limit  *RateLimit
	served atomic.Int64

	mu     sync.Mutex
	grants map[string]*grant // by token
}

type grant struct {
	host     string
	name     string
	path     string
	revoked  bool
	progress func(int64) // hears the bytes sent (nil = nobody)
}

// StartPullServer listens on addr (host:port; port 0 = any free port) and serves until Close.
// The hosts must be able to reach addr's host, so it cannot be a wildcard address.
func StartPullServer(addr string, limit *RateLimit) (*PullServer, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--serve-addr %q: want host:port the hosts can reach", addr)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		return nil, fmt.Errorf("--serve-addr %q: name an address of this machine that the hosts can reach, not a wildcard", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--serve-addr %s: %w", addr, err)
	}
	s := &PullServer{ln: ln, limit: limit, grants: map[string]*grant{}, URLHost: ln.Addr().String()}
	// net/http's own log would reach the terminal: a host dropping a download is not news.
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 30 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the server and its transfers.
func (s *PullServer) Close() { _ = s.srv.Close() }

// Served is the installer bytes sent so far.
func (s *PullServer) Served() int64 { return s.served.Load() }

// Grant makes the file at path downloadable by one host under a new token and returns its URL
// and the function that revokes it; progress (nil = none) hears the bytes served.
func (s *PullServer) Grant(host, name, path string, progress func(int64)) (url string, revoke func()) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	s.mu.Lock()
	g := &grant{host: host, name: name, path: path, progress: progress}
	s.grants[token] = g
	s.mu.Unlock()
	return fmt.Sprintf("http://%s/%s/%s", s.URLHost, token, name), func() {
		s.mu.Lock()
		g.revoked = true
		s.mu.Unlock()
	}
}

// Token extracts the secret part of a granted URL, for redaction.
func Token(url string) string {
	parts := strings.Split(url, "/")
	if len(parts) >= 5 {
		return parts[3]
	}
	return ""
}

// ServeHTTP answers GET /TOKEN/NAME for a live grant, with byte ranges; everything else gets
// 404, a bad or revoked token 403.
func (s *PullServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	token, name, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if !ok || strings.Contains(name, "/") || token == "" {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	g := s.grants[token]
	valid := g != nil && !g.revoked
	s.mu.Unlock()
	if !valid {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	if name != g.name {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(g.path)
	if err != nil {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(&pacedWriter{ResponseWriter: w, ctx: r.Context(), l: s.limit, served: &s.served, progress: g.progress}, r, name, st.ModTime(), f)
}

// pacedWriter paces a response's body through the rate limit and counts it; the text of an
// error reply (a range past the end) is neither paced nor counted.
type pacedWriter struct {
	http.ResponseWriter
	ctx      context.Context
	l        *RateLimit
	served   *atomic.Int64
	progress func(int64)
	status   int
}

func (p *pacedWriter) WriteHeader(code int) {
	p.status = code
	p.ResponseWriter.WriteHeader(code)
}

func (p *pacedWriter) Write(b []byte) (int, error) {
	if p.status >= 300 {
		return p.ResponseWriter.Write(b)
	}
	const slice = 32 << 10 // pace in small steps, so that many transfers share the limit evenly
	written := 0
	for len(b) > 0 {
		n := min(len(b), slice)
		if err := p.l.wait(p.ctx, n); err != nil {
			return written, err
		}
		m, err := p.ResponseWriter.Write(b[:n])
		written += m
		p.served.Add(int64(m))
		if p.progress != nil {
			p.progress(int64(m))
		}
		if err != nil {
			return written, err
		}
		b = b[n:]
	}
	return written, nil
}

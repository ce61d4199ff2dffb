package remote

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iisremedy/iisremedy/lab/hostile"
	"github.com/iisremedy/iisremedy/lab/wsman"
)

// hostileCase is how the client must end against one behaviour of lab/hostile: the class of
// its *Error, a sentinel the error must match besides the class's own, and whether Dial (the
// Create) or the first Run (its Receive) meets it.
type hostileCase struct {
	behaviour string
	class     Class
	sentinel  error
	atDial    bool
}

// hostileCases decides the class of every hostile reply. Breaking a bound of the client is a
// protocol error wrapping ErrReplyLimit (or ErrOutputLimit), never temporary; a body that
// trickles forever is a timeout of the per-request deadline; a host that never finishes a
// command is ended by the caller's ctx (canceled here, or its deadline).
var hostileCases = []hostileCase{
	{hostile.EndlessStatusLine, ClassProtocol, ErrReplyLimit, true},
	{hostile.EndlessHeaderLine, ClassProtocol, ErrReplyLimit, true},
	{hostile.EndlessHeaders, ClassProtocol, ErrReplyLimit, true},
	{hostile.EndlessBody, ClassProtocol, ErrReplyLimit, true},
	{hostile.TrickleBody, ClassTimeout, nil, true},
	{hostile.HugeShellID, ClassProtocol, nil, true},
	{hostile.DeepCreate, ClassProtocol, ErrReplyLimit, true},
	{hostile.DeepReceive, ClassProtocol, ErrReplyLimit, false},
	{hostile.ManyElements, ClassProtocol, ErrReplyLimit, false},
	{hostile.TimedOutForever, ClassCanceled, context.Canceled, false},
	{hostile.RunningForever, ClassCanceled, context.Canceled, false},
	{hostile.EndlessOutput, ClassProtocol, ErrOutputLimit, false},
	{hostile.Redirect, ClassProtocol, nil, true},
	{hostile.HugeChallenge, ClassProtocol, ErrReplyLimit, true},
}

// idleSleeper is an injected sleep that records the delays and cancels the command's ctx at
// the nth wait, so that a host that never finishes is ended by an event, not a clock.
type idleSleeper struct {
	n      int
	cancel context.CancelFunc
	mu     sync.Mutex
	delays []time.Duration
}

func (s *idleSleeper) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.delays = append(s.delays, d)
	if len(s.delays) == s.n {
		s.cancel()
	}
	s.mu.Unlock()
	return ctx.Err()
}

func hostileTarget(srv *hostile.Server, auth string) Target {
	return Target{Host: srv.Host(), Port: srv.Port(), Auth: auth, User: hostile.User, Password: hostile.Password,
		AllowUnencrypted: true, DialTimeout: 5 * time.Second}
}

// TestHostileHosts meets every behaviour of lab/hostile over NTLM (sealed) and Basic: each ends
// in its classified *Error, not retried, its text short and free of secrets, every connection
// dropped (the server sees them closed) and no goroutine of this package left.
func TestHostileHosts(t *testing.T) {
	if len(hostileCases) != len(hostile.Behaviours()) {
		t.Fatalf("%d cases for %d behaviours", len(hostileCases), len(hostile.Behaviours()))
	}
	for _, auth := range []string{AuthNegotiate, AuthBasic} {
		for _, hc := range hostileCases {
			t.Run(auth+"/"+hc.behaviour, func(t *testing.T) { testHostile(t, hc, auth) })
		}
	}
}

func testHostile(t *testing.T, hc hostileCase, auth string) {
	srv := hostile.Start(t, hc.behaviour, auth)
	tg := hostileTarget(srv, auth)
	if hc.behaviour == hostile.TrickleBody {
		// The per-request deadline must end it; 2 s is ample for the well-behaved handshake.
		tg.OperationTimeout, tg.ResponseGrace = time.Second, time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sl := &idleSleeper{n: 20, cancel: cancel}
	// The cap works the same at any size; the benchmark meets the default one.
	s, err := Dial(ctx, tg, WithSleep(sl.sleep), WithMaxOutput(1<<20))
	if !hc.atDial {
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		_, err = s.Run(ctx, "echo hi")
		if cerr := s.Close(context.Background()); cerr != nil && hc.class != ClassCanceled {
			t.Errorf("close: %v", cerr)
		}
	} else if err == nil {
		t.Fatal("dial succeeded")
	}
	t.Logf("%v", err)
	re := checkErr(t, err, hc.class, nil)
	if hc.sentinel != nil && !errors.Is(err, hc.sentinel) {
		t.Fatalf("errors.Is(%v, %v) = false", err, hc.sentinel)
	}
	if re.Temporary() {
		t.Fatalf("temporary error: %v", err)
	}
	if n := len(err.Error()); n > 1000 {
		t.Fatalf("error text of %d bytes: %.300s", n, err)
	}
	st := srv.Stats()
	switch {
	case hc.behaviour == hostile.Redirect && st.Redirected != 0:
		t.Fatalf("redirect followed (%d requests)", st.Redirected)
	case hc.atDial && st.Creates > 1:
		t.Fatalf("create sent %d times", st.Creates)
	case hc.class == ClassCanceled:
		// Each Receive answered at once is followed by a growing, bounded wait; the 20th wait
		// cancels ctx.
		if st.Receives != int64(sl.n) {
			t.Fatalf("%d receives for %d waits", st.Receives, sl.n)
		}
		want := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
		for i, d := range want {
			if sl.delays[i] != d {
				t.Fatalf("receive backoff %v, want it to start %v", sl.delays, want)
			}
		}
	case !hc.atDial && st.Receives > 1 && hc.sentinel != ErrOutputLimit:
		t.Fatalf("%d receives, the failing one was sent again", st.Receives)
	}
	srv.WaitClosed(t)
	noSessionGoroutines(t)
}

// TestHostileDeadlineEndsEndlessCommand: the engine bounds a command with ctx's deadline; a
// host answering every Receive at once with no output is then asked at most a handful of
// times (the real backoff timer; a slow machine only asks fewer times).
func TestHostileDeadlineEndsEndlessCommand(t *testing.T) {
	for _, auth := range []string{AuthNegotiate, AuthBasic} {
		t.Run(auth, func(t *testing.T) {
			srv := hostile.Start(t, hostile.RunningForever, auth)
			s := dial(t, hostileTarget(srv, auth))
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err := s.Run(ctx, "echo hi")
			checkErr(t, err, ClassTimeout, context.DeadlineExceeded)
			// Waits of 50, 100, 200 and 400 ms fit in a second, the fifth (800 ms) does not end in it.
			if n := srv.Stats().Receives; n > 6 {
				t.Fatalf("%d receives in a second", n)
			}
		})
	}
}

// TestHostileErrorQuotesAreCut: a host's long values are quoted cut and printable.
func TestHostileErrorQuotesAreCut(t *testing.T) {
	srv := hostile.Start(t, hostile.HugeShellID, AuthNegotiate)
	_, err := Dial(context.Background(), hostileTarget(srv, AuthNegotiate))
	checkErr(t, err, ClassProtocol, ErrProtocol)
	if !strings.Contains(err.Error(), `AAAA"…(102400 bytes)`) {
		t.Fatalf("error %q does not quote the ShellId cut with its length", err)
	}
}

// TestBasicHeaderCount: net/http bounds the head's bytes; the count is checked on its header.
func TestBasicHeaderCount(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i <= maxHeaders; i++ {
			w.Header().Set("X-"+strconv.Itoa(i), "y")
		}
	}))
	defer ts.Close()
	host, port := hostPort(t, ts.Listener.Addr())
	_, err := Dial(context.Background(), basicTarget(host, port))
	checkErr(t, err, ClassProtocol, ErrReplyLimit)
}

// TestDeclaredLengthOverLimitFailsAtOnce: a reply declaring a body over the cap is refused on
// its header, without waiting for the body (this server never sends it).
func TestDeclaredLengthOverLimitFailsAtOnce(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(minReplyLimit+1))
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer ts.Close()
	host, port := hostPort(t, ts.Listener.Addr())
	_, err := Dial(context.Background(), basicTarget(host, port))
	checkErr(t, err, ClassProtocol, ErrReplyLimit)
}

// TestReceiveBackoffResetsOnOutput: replies without output are spaced by the growing backoff,
// output starts it again from the smallest delay.
func TestReceiveBackoffResetsOnOutput(t *testing.T) {
	for _, auth := range []string{AuthNegotiate, AuthBasic} {
		t.Run(auth, func(t *testing.T) {
			var n atomic.Int64
			_, tg := setup(t, auth, func(s *wsman.Server) {
				s.Intercept = func(w http.ResponseWriter, r *http.Request, x *wsman.Exchange) bool {
					if x.Op != "Receive" {
						return false
					}
					switch n.Add(1) {
					case 1, 2, 4: // at once, no output
						x.Reply(http.StatusOK, receiveReply(nil, nil, 1, false, 0))
					case 3:
						x.Reply(http.StatusOK, receiveReply([]byte("out"), nil, 10, false, 0))
					default:
						x.Reply(http.StatusOK, receiveReply([]byte("end"), nil, 10, true, 5))
					}
					return true
				}
			})
			ns := &noSleep{}
			s := dial(t, tg, WithSleep(ns.sleep))
			r := run(t, s, "echo x")
			if string(r.Stdout) != "outend" || r.ExitCode != 5 {
				t.Fatalf("got %q exit %d", r.Stdout, r.ExitCode)
			}
			want := []time.Duration{minReceiveBackoff, 2 * minReceiveBackoff, minReceiveBackoff}
			if !slices.Equal(ns.delays, want) {
				t.Fatalf("delays %v, want %v", ns.delays, want)
			}
		})
	}
}

func TestQuote(t *testing.T) {
	long := strings.Repeat("é", maxQuoted) // 2 bytes a rune: the cut falls inside none
	cases := map[string]string{
		"plain":                `"plain"`,
		"esc\x1b[2Jape\r\n":    `"esc\x1b[2Jape\r\n"`,
		"bad \xff utf-8":       `"bad \xff utf-8"`,
		"x" + long:             `"x` + strings.Repeat("é", (maxQuoted-1)/2) + `"…(401 bytes)`,
		"bidi \u202e override": `"bidi \u202e override"`,
	}
	for in, want := range cases {
		if got := quote(in); got != want {
			t.Errorf("quote(%.40q) = %s, want %s", in, got, want)
		}
	}
}

// TestTransporterRefusesDeepReply: through NewTransporter, masterzen's own tree parser never
// sees a reply over the XML bounds.
func TestTransporterRefusesDeepReply(t *testing.T) {
	srv := hostile.Start(t, hostile.DeepCreate, AuthNegotiate)
	c, _ := masterzenClient(t, hostileTarget(srv, AuthNegotiate))
	_, err := c.CreateShell()
	checkErr(t, err, ClassProtocol, ErrReplyLimit)
}

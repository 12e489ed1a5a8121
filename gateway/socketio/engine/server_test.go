package engine

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// th is a Handler for tests: it records what happens and echoes when told to.
type th struct {
	echo     bool
	keepOver bool

	mu       sync.Mutex
	opened   []*Session
	messages []string
	oversize [][]byte
	closed   map[*Session]string
	closedCh chan string
}

func newTH() *th { return &th{closed: map[*Session]string{}, closedCh: make(chan string, 100)} }

func (h *th) OnOpen(s *Session) {
	h.mu.Lock()
	h.opened = append(h.opened, s)
	h.mu.Unlock()
}

func (h *th) OnMessage(s *Session, d []byte, binary bool) {
	h.mu.Lock()
	h.messages = append(h.messages, string(d))
	h.mu.Unlock()
	if h.echo {
		_ = s.Send(d, binary)
	}
}

func (h *th) OnOversize(s *Session, prefix []byte, _ bool) bool {
	h.mu.Lock()
	h.oversize = append(h.oversize, append([]byte(nil), prefix...))
	h.mu.Unlock()
	if h.keepOver {
		_ = s.Send([]byte("too big"), false)
	}
	return h.keepOver
}

func (h *th) OnClose(s *Session, reason string) {
	h.mu.Lock()
	if _, dup := h.closed[s]; dup {
		panic("OnClose twice")
	}
	h.closed[s] = reason
	h.mu.Unlock()
	h.closedCh <- reason
}

func (h *th) waitClose(t *testing.T) string {
	t.Helper()
	select {
	case r := <-h.closedCh:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no OnClose")
		return ""
	}
}

func startEngine(t *testing.T, h Handler, tweak func(*Options)) (*Server, string) {
	t.Helper()
	o := Options{Handler: h, PingInterval: time.Second, PingTimeout: time.Second, CloseTimeout: time.Second}
	if tweak != nil {
		tweak(&o)
	}
	srv, err := NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
	})
	return srv, hs.URL + "/engine.io/"
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	return do(t, http.MethodGet, url, "")
}

func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func handshake(t *testing.T, base string) string {
	t.Helper()
	code, body := get(t, base+"?EIO=4&transport=polling")
	if code != 200 || !strings.HasPrefix(body, `0{"sid":"`) {
		t.Fatalf("handshake: %d %q", code, body)
	}
	return body[9 : 9+20]
}

// The engine's HTTP errors are Node's: same codes, messages and statuses.
func TestHTTPErrors(t *testing.T) {
	_, base := startEngine(t, newTH(), func(o *Options) {
		o.AllowRequest = func(r *http.Request) error {
			if r.Header.Get("Origin") == "https://evil.example" {
				return errors.New("origin not allowed")
			}
			return nil
		}
	})
	tests := []struct {
		method, query, origin string
		status                int
		body                  string
	}{
		{"GET", "EIO=4", "", 400, `{"code":0,"message":"Transport unknown"}`},
		{"GET", "EIO=4&transport=abc", "", 400, `{"code":0,"message":"Transport unknown"}`},
		{"GET", "EIO=4&transport=polling&sid=nope", "", 400, `{"code":1,"message":"Session ID unknown"}`},
		{"POST", "EIO=4&transport=polling", "", 400, `{"code":2,"message":"Bad handshake method"}`},
		{"PUT", "EIO=4&transport=polling", "", 400, `{"code":2,"message":"Bad handshake method"}`},
		{"GET", "EIO=4&transport=websocket", "", 400, `{"code":3,"message":"Bad request"}`},
		{"GET", "transport=polling", "", 400, `{"code":5,"message":"Unsupported protocol version"}`},
		{"GET", "EIO=3&transport=polling", "", 400, `{"code":5,"message":"Unsupported protocol version"}`},
		{"GET", "EIO=4&transport=polling", "https://evil.example", 403, `{"code":4,"message":"origin not allowed"}`},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, base+"?"+tt.query, nil)
		if tt.origin != "" {
			req.Header.Set("Origin", tt.origin)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tt.status || string(b) != tt.body || res.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s ?%s: %d %s (%s), want %d %s", tt.method, tt.query, res.StatusCode, b, res.Header.Get("Content-Type"), tt.status, tt.body)
		}
	}
}

func TestCORS(t *testing.T) {
	_, base := startEngine(t, newTH(), func(o *Options) {
		o.CORS = &CORS{Origins: []string{"https://app.example"}, Credentials: true}
	})
	req, _ := http.NewRequest(http.MethodOptions, base+"?EIO=4&transport=polling", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	h := res.Header
	if res.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		h.Get("Access-Control-Allow-Credentials") != "true" || h.Get("Access-Control-Allow-Headers") != "content-type" {
		t.Fatalf("preflight: %d %v", res.StatusCode, h)
	}
	req, _ = http.NewRequest(http.MethodGet, base+"?EIO=4&transport=polling", nil)
	req.Header.Set("Origin", "https://other.example")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("a foreign origin got CORS headers")
	}
}

// A malformed polling POST closes the session with 400 (Node's behaviour;
// zishang520 kept the session open one GET longer).
func TestMalformedPostClosesSession(t *testing.T) {
	h := newTH()
	_, base := startEngine(t, h, nil)
	for _, body := range []string{"abc", "", "4ok\x1e\x1e", "4ok\x1ezz"} {
		sid := handshake(t, base)
		url := base + "?EIO=4&transport=polling&sid=" + sid
		if code, _ := do(t, "POST", url, body); code != 400 {
			t.Errorf("POST %q: %d, want 400", body, code)
		}
		if r := h.waitClose(t); r != ReasonParseError {
			t.Errorf("POST %q: closed with %q", body, r)
		}
		if code, _ := get(t, url); code != 400 {
			t.Errorf("GET after POST %q: %d, want 400", body, code)
		}
	}
}

// Two GETs at once: the second is refused, the first gets the close packet,
// the session is gone.
func TestOverlappingPolls(t *testing.T) {
	h := newTH()
	_, base := startEngine(t, h, nil)
	sid := handshake(t, base)
	url := base + "?EIO=4&transport=polling&sid=" + sid
	first := make(chan string, 1)
	go func() { _, b := get(t, url); first <- b }()
	time.Sleep(50 * time.Millisecond)
	if code, _ := get(t, url); code != 400 {
		t.Fatalf("second GET: %d", code)
	}
	if b := <-first; b != "1" {
		t.Fatalf("first GET: %q, want the close packet", b)
	}
	if code, _ := get(t, url); code != 400 {
		t.Fatal("session still open")
	}
	if r := h.waitClose(t); r != ReasonTransportError {
		t.Fatalf("reason %q", r)
	}
}

// A long-poll GET that races a close is always answered (zishang520 left
// about 3 in 200 hanging).
func TestPollRacingCloseIsAnswered(t *testing.T) {
	h := newTH()
	srv, base := startEngine(t, h, nil)
	for i := range 200 {
		sid := handshake(t, base)
		ss := srv.Session(sid)
		done := make(chan int, 1)
		go func() {
			code, _ := get(t, base+"?EIO=4&transport=polling&sid="+sid)
			done <- code
		}()
		time.Sleep(time.Duration(i%4) * 250 * time.Microsecond)
		if i%2 == 0 {
			ss.Close()
		} else {
			ss.close(ReasonPingTimeout, false)
		}
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			t.Fatalf("try %d: the GET was never answered", i)
		}
		h.waitClose(t)
	}
}

// Packets queued before a server-side close are delivered, then the close.
func TestGracefulCloseOverPolling(t *testing.T) {
	h := newTH()
	srv, base := startEngine(t, h, nil)
	sid := handshake(t, base)
	ss := srv.Session(sid)
	_ = ss.Send([]byte("a"), false)
	_ = ss.Send([]byte{1}, true)
	ss.Close()
	if r := h.waitClose(t); r != ReasonForcedClose {
		t.Fatalf("reason %q", r)
	}
	url := base + "?EIO=4&transport=polling&sid=" + sid
	if code, body := get(t, url); code != 200 || body != "4a\x1ebAQ==\x1e1" {
		t.Fatalf("last poll: %d %q", code, body)
	}
	if code, _ := get(t, url); code != 400 {
		t.Fatal("session still open after its last poll")
	}
}

func dialWS(t *testing.T, base, query string) *websocket.Conn {
	t.Helper()
	u := "ws" + strings.TrimPrefix(base, "http") + "?EIO=4&transport=websocket" + query
	c, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readText(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

func TestWebSocketEchoAndServerClose(t *testing.T) {
	h := newTH()
	h.echo = true
	srv, base := startEngine(t, h, nil)
	c := dialWS(t, base, "")
	open := readText(t, c)
	if !strings.HasPrefix(open, `0{"sid":"`) || !strings.Contains(open, `"upgrades":[]`) {
		t.Fatalf("open packet %q", open)
	}
	_ = c.WriteMessage(websocket.TextMessage, []byte("4hello"))
	if got := readText(t, c); got != "4hello" {
		t.Fatalf("echo %q", got)
	}
	_ = c.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3})
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if mt, b, err := c.ReadMessage(); err != nil || mt != websocket.BinaryMessage || string(b) != "\x01\x02\x03" {
		t.Fatalf("binary echo: %v %q %v", mt, b, err)
	}
	ss := srv.Session(open[9:29])
	for range 100 {
		_ = ss.Send([]byte("x"), false)
	}
	ss.Close()
	for i := range 100 {
		if got := readText(t, c); got != "4x" {
			t.Fatalf("frame %d: %q", i, got)
		}
	}
	_, _, err := c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != CloseNormal {
		t.Fatalf("after the queued frames: %v, want a close frame 1000", err)
	}
	if r := h.waitClose(t); r != ReasonForcedClose {
		t.Fatalf("reason %q", r)
	}
}

// A message over MaxPayload is skipped as it streams; its prefix reaches
// OnOversize, which may keep the session; otherwise 1009.
func TestOversizeMessage(t *testing.T) {
	for _, keep := range []bool{true, false} {
		h := newTH()
		h.keepOver = keep
		_, base := startEngine(t, h, func(o *Options) { o.MaxPayload = 1000; o.OversizePrefix = 16 })
		c := dialWS(t, base, "")
		readText(t, c)
		big := "40" + `{"token":"` + strings.Repeat("j", 5000) + `"}`
		_ = c.WriteMessage(websocket.TextMessage, []byte(big))
		if keep {
			if got := readText(t, c); got != "4too big" {
				t.Fatalf("answer %q", got)
			}
			_ = c.WriteMessage(websocket.TextMessage, []byte("4after"))
			time.Sleep(100 * time.Millisecond)
			h.mu.Lock()
			msgs := h.messages
			h.mu.Unlock()
			if len(msgs) != 1 || msgs[0] != "after" {
				t.Fatalf("messages after the oversize one: %q", msgs)
			}
		} else {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _, err := c.ReadMessage()
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != CloseMessageTooBig {
				t.Fatalf("got %v, want close 1009", err)
			}
		}
		h.mu.Lock()
		over := h.oversize
		h.mu.Unlock()
		if len(over) != 1 || string(over[0]) != big[1:16] {
			t.Fatalf("oversize prefixes %q", over)
		}
	}
}

// A client that does not read is cut off once what is queued for it (here
// and in the event loop's buffer) passes MaxBacklog.
func TestBacklogCutOff(t *testing.T) {
	chunk := make([]byte, 32<<10)
	shared := NewTextMessage(chunk)
	copied := func(ss *Session) error { return ss.Send(chunk, true) }
	byRef := func(ss *Session) error { return ss.SendMessage(shared) }
	for name, c := range map[string]struct {
		send func(*Session) error
		held bool // the flushers held: everything stays queued in the session
	}{
		"copied": {send: copied},
		"shared": {send: byRef},
		// what is queued by reference counts as a copy would: nine 32 KB
		// messages pass 256 KB before any of them reaches the event loop
		"shared, held": {send: byRef, held: true},
	} {
		t.Run(name, func(t *testing.T) {
			h := newTH()
			srv, base := startEngine(t, h, func(o *Options) { o.MaxBacklog = 256 << 10; o.MaxPayload = 64 << 10 })
			ss := openUnread(t, srv, base)
			var sendErr error
			if c.held {
				srv.Batch(func() {
					for i := 0; i < 9 && sendErr == nil; i++ {
						sendErr = c.send(ss)
					}
				})
			}
			for i := 0; i < 10000 && sendErr == nil && !c.held; i++ {
				sendErr = c.send(ss)
				if i%8 == 0 {
					time.Sleep(time.Millisecond) // let the flusher hand frames to the loop
				}
			}
			if !errors.Is(sendErr, ErrBacklog) && !errors.Is(sendErr, ErrClosed) {
				t.Fatalf("sends went on: %v", sendErr)
			}
			if r := h.waitClose(t); r != ReasonTransportError {
				t.Fatalf("reason %q", r)
			}
			if srv.Stats().CutOff != 1 {
				t.Fatalf("stats %+v", srv.Stats())
			}
		})
	}
}

// openUnread opens a WebSocket session from a client that never reads, with
// a small receive buffer, and returns the server's side of it.
func openUnread(t *testing.T, srv *Server, base string) *Session {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimSuffix(strings.TrimPrefix(base, "http://"), "/engine.io/"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	_, _ = io.WriteString(conn, "GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	deadline := time.Now().Add(5 * time.Second)
	for len(srv.sessionsNow()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if len(srv.sessionsNow()) == 0 {
		t.Fatal("no session opened")
	}
	return srv.sessionsNow()[0]
}

func (s *Server) sessionsNow() []*Session {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*Session
	for _, ss := range s.sessions {
		out = append(out, ss)
	}
	return out
}

// An upgrade the client does not complete in time is abandoned; the
// session stays on polling.
func TestUpgradeTimeout(t *testing.T) {
	h := newTH()
	h.echo = true
	_, base := startEngine(t, h, func(o *Options) { o.UpgradeTimeout = 200 * time.Millisecond })
	sid := handshake(t, base)
	c := dialWS(t, base, "&sid="+sid)
	_ = c.WriteMessage(websocket.TextMessage, []byte("2probe"))
	if got := readText(t, c); got != "3probe" {
		t.Fatalf("probe answer %q", got)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("the probe connection was not closed: %v", err)
	}
	url := base + "?EIO=4&transport=polling&sid=" + sid
	if code, _ := do(t, "POST", url, "4still"); code != 200 {
		t.Fatalf("POST after the failed upgrade: %d", code)
	}
	if code, body := get(t, url); code != 200 || body != "4still" {
		t.Fatalf("GET after the failed upgrade: %d %q", code, body)
	}
}

// Shared messages (queued by reference) and frames appended to the
// session's own buffer leave in the order they were queued, whether or not
// a flush runs between them, and the close frame comes after all of them.
func TestSharedAndOwnFramesKeepOrder(t *testing.T) {
	h := newTH()
	srv, base := startEngine(t, h, nil)
	c := dialWS(t, base, "")
	open := readText(t, c)
	ss := srv.Session(open[9:29])
	var want []string
	shared := NewTextMessage([]byte("shared"))
	for i := range 600 {
		send := func() {
			if i%3 == 0 {
				_ = ss.Send([]byte("own"+strconv.Itoa(i)), false)
				want = append(want, "4own"+strconv.Itoa(i))
			} else {
				_ = ss.SendMessage(shared) // the same message, many times
				want = append(want, "4shared")
				m := NewTextMessage([]byte("m" + strconv.Itoa(i)))
				_ = ss.SendMessage(m)
				want = append(want, "4m"+strconv.Itoa(i))
			}
		}
		if i%50 < 25 {
			srv.Batch(send) // held: queued together
		} else {
			send()
		}
	}
	ss.Close()
	for i, w := range want {
		if got := readText(t, c); got != w {
			t.Fatalf("frame %d: %q, want %q", i, got, w)
		}
	}
	_, _, err := c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != CloseNormal {
		t.Fatalf("after the queued frames: %v, want a close frame 1000", err)
	}
}

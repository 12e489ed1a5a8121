package socketio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// start runs a server (after setup registered its handlers) on a real TCP
// listener and returns its base URL.
func start(t *testing.T, o Options, setup func(*Server)) (*Server, string) {
	t.Helper()
	if o.PingInterval == 0 {
		o.PingInterval, o.PingTimeout = time.Minute, time.Minute
	}
	srv, err := NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(srv)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
	})
	return srv, hs.URL + "/socket.io/"
}

// raw is a WebSocket client speaking the protocol by hand.
type raw struct {
	t *testing.T
	c *websocket.Conn
}

func dial(t *testing.T, base string) *raw {
	t.Helper()
	u := "ws" + strings.TrimPrefix(base, "http") + "?EIO=4&transport=websocket"
	c, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	r := &raw{t: t, c: c}
	if open := r.read(); !strings.HasPrefix(open, "0{") {
		t.Fatalf("open packet %q", open)
	}
	return r
}

func (r *raw) send(s string) {
	r.t.Helper()
	if err := r.c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		r.t.Fatalf("send %q: %v", s, err)
	}
}

func (r *raw) sendBinary(b []byte) {
	r.t.Helper()
	if err := r.c.WriteMessage(websocket.BinaryMessage, b); err != nil {
		r.t.Fatalf("send binary: %v", err)
	}
}

// read returns the next message that is not a ping ("2"); binary as "bin:" + bytes.
func (r *raw) read() string {
	r.t.Helper()
	for {
		_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		mt, b, err := r.c.ReadMessage()
		if err != nil {
			r.t.Fatalf("read: %v", err)
		}
		if mt == websocket.BinaryMessage {
			return "bin:" + string(b)
		}
		if string(b) == "2" {
			r.send("3")
			continue
		}
		return string(b)
	}
}

// closed waits for the connection to end and returns its close code (0 for none).
func (r *raw) closed() int {
	r.t.Helper()
	for {
		_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := r.c.ReadMessage()
		if err == nil {
			if string(b) == "2" {
				continue
			}
			r.t.Fatalf("got %q, want the connection to close", b)
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			r.t.Fatal("the connection stayed open")
		}
		return 0
	}
}

func (r *raw) connect(nspAndAuth string) string {
	r.t.Helper()
	r.send("40" + nspAndAuth)
	got := r.read()
	if !strings.HasPrefix(got, "40") || !strings.Contains(got, `"sid":"`) {
		r.t.Fatalf("CONNECT answer %q", got)
	}
	i := strings.Index(got, `"sid":"`) + 7
	return got[i : i+20]
}

// Defect 1 of zishang520: a server-side disconnect lost what was queued and
// its DISCONNECT. Here both arrive, in order, then the close.
func TestDisconnectDeliversQueuedFramesThenDisconnect(t *testing.T) {
	for _, closeConn := range []bool{true, false} {
		payload := strings.Repeat("x", 10<<10)
		var reason atomic.Value
		_, base := start(t, Options{DisableRecovery: true}, func(srv *Server) {
			srv.OnConnection(func(s *Socket) {
				for i := range 200 {
					_ = s.Emit("bulk", i, payload)
				}
				s.Disconnect(closeConn)
			})
			srv.OnDisconnect(func(_ *Socket, r string) { reason.Store(r) })
		})
		c := dial(t, base)
		c.connect("")
		for i := range 200 {
			want := fmt.Sprintf(`42["bulk",%d,"%s"]`, i, payload)
			if got := c.read(); got != want {
				t.Fatalf("close=%v: frame %d is %.40q", closeConn, i, got)
			}
		}
		if got := c.read(); got != "41" {
			t.Fatalf("close=%v: after the frames %q, want the DISCONNECT", closeConn, got)
		}
		if closeConn {
			if code := c.closed(); code != websocket.CloseNormalClosure {
				t.Fatalf("close code %d", code)
			}
		}
		waitFor(t, func() bool { return reason.Load() == ReasonServerNamespaceDisconnect })
	}
}

// CloseTransport ends the connection without a DISCONNECT, after what was
// queued: socket.io-client then reconnects by itself.
func TestCloseTransportSendsNoDisconnect(t *testing.T) {
	var reason atomic.Value
	_, base := start(t, Options{DisableRecovery: true}, func(srv *Server) {
		srv.OnConnection(func(s *Socket) {
			_ = s.Emit("bye")
			s.CloseTransport()
		})
		srv.OnDisconnect(func(_ *Socket, r string) { reason.Store(r) })
	})
	c := dial(t, base)
	c.connect("")
	if got := c.read(); got != `42["bye"]` {
		t.Fatalf("got %q", got)
	}
	if code := c.closed(); code != websocket.CloseNormalClosure {
		t.Fatalf("close code %d", code)
	}
	waitFor(t, func() bool { return reason.Load() == ReasonForcedServerClose })
}

// Defect 2: a malformed polling POST closes the session with 400.
func TestMalformedPollingPost(t *testing.T) {
	_, base := start(t, Options{}, nil)
	res, err := http.Get(base + "?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	sid := string(b[9:29])
	url := base + "?EIO=4&transport=polling&sid=" + sid
	res, err = http.Post(url, "text/plain", strings.NewReader("abc"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Fatalf("malformed POST: %d", res.StatusCode)
	}
	res, err = http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Fatalf("GET after it: %d, the session should be gone", res.StatusCode)
	}
}

// Defect 3: an event sent right after the CONNECT (before its answer, even
// while a slow middleware runs) is handled, in order.
func TestEventRightAfterConnect(t *testing.T) {
	_, base := start(t, Options{}, func(srv *Server) {
		srv.Use(func(*Socket) error { time.Sleep(5 * time.Millisecond); return nil })
		srv.OnEvent("hello", func(s *Socket, args []any, ack AckFunc) { ack("hi", args[0]) })
	})
	for i := range 50 {
		c := dial(t, base)
		c.send("40")
		c.send(fmt.Sprintf(`421["hello",%d]`, i))
		if got := c.read(); !strings.HasPrefix(got, `40{"sid":"`) {
			t.Fatalf("try %d: %q before the CONNECT answer", i, got)
		}
		if got := c.read(); got != fmt.Sprintf(`431["hi",%d]`, i) {
			t.Fatalf("try %d: %q", i, got)
		}
		c.c.Close()
	}
}

// Defect 4: a received binary, sent on twice (and to another socket),
// arrives intact each time.
func TestReceivedBinarySentOnTwice(t *testing.T) {
	var first atomic.Pointer[Socket]
	_, base := start(t, Options{DisableRecovery: true}, func(srv *Server) {
		srv.OnConnection(func(s *Socket) { first.CompareAndSwap(nil, s) })
		srv.OnEvent("file", func(s *Socket, args []any, _ AckFunc) {
			data := args[0].(map[string]any)["data"].([]byte)
			_ = s.Emit("copy", data)
			_ = s.Emit("copy", map[string]any{"again": data})
			_ = srv.To(first.Load().ID()).Emit("copy", data)
		})
	})
	other := dial(t, base)
	other.connect("")
	waitFor(t, func() bool { return first.Load() != nil })
	c := dial(t, base)
	c.connect("")
	c.send(`451-["file",{"data":{"_placeholder":true,"num":0}}]`)
	c.sendBinary([]byte{1, 2, 3, 255})
	for _, want := range []string{`451-["copy",{"_placeholder":true,"num":0}]`, "bin:\x01\x02\x03\xff",
		`451-["copy",{"again":{"_placeholder":true,"num":0}}]`, "bin:\x01\x02\x03\xff"} {
		if got := c.read(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if got := other.read(); got != `451-["copy",{"_placeholder":true,"num":0}]` {
		t.Fatalf("other socket: %q", got)
	}
	if got := other.read(); got != "bin:\x01\x02\x03\xff" {
		t.Fatalf("other socket attachment: %q", got)
	}
}

// A CONNECT over MaxPayload (a huge auth token) gets CONNECT_ERROR, not a
// bare close that socket.io-client would retry forever, on both transports.
func TestOversizeConnectAnswered(t *testing.T) {
	o := Options{DisableRecovery: true, MaxPayload: 2000, ConnectTooLarge: &ConnectError{Message: "token too long", Data: map[string]any{"code": "TOKEN_TOO_LONG"}}}
	_, base := start(t, o, func(srv *Server) { srv.OnConnection(func(s *Socket) { _ = s.Emit("ok") }) })
	token := strings.Repeat("t", 1<<20)
	want := `44{"data":{"code":"TOKEN_TOO_LONG"},"message":"token too long"}`

	c := dial(t, base)
	c.send(`40{"token":"` + token + `"}`)
	if got := c.read(); got != want {
		t.Fatalf("websocket: %q", got)
	}
	c.connect(`{"token":"short"}`)
	if got := c.read(); got != `42["ok"]` {
		t.Fatalf("after a normal CONNECT: %q", got)
	}

	res, err := http.Get(base + "?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	url := base + "?EIO=4&transport=polling&sid=" + string(b[9:29])
	res, err = http.Post(url, "text/plain", strings.NewReader(`40{"token":"`+token+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("polling POST: %d", res.StatusCode)
	}
	res, err = http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != want {
		t.Fatalf("polling: %q", b)
	}
}

func TestMiddlewareAndNamespaces(t *testing.T) {
	_, base := start(t, Options{DisableRecovery: true}, func(srv *Server) {
		srv.Use(func(s *Socket) error {
			switch s.Handshake().Auth["token"] {
			case "bad":
				return &ConnectError{Message: "authentication refused", Data: map[string]any{"code": "TOKEN_EXPIRED"}}
			case "plain":
				return errors.New("nope")
			case "panic":
				panic("middleware bug")
			}
			return nil
		})
		srv.Of("/admin").OnConnection(func(s *Socket) { _ = s.Emit("admin") })
	})
	c := dial(t, base)
	c.send(`40{"token":"bad"}`)
	if got := c.read(); got != `44{"data":{"code":"TOKEN_EXPIRED"},"message":"authentication refused"}` {
		t.Fatalf("refusal: %q", got)
	}
	c.send(`40{"token":"plain"}`)
	if got := c.read(); got != `44{"message":"nope"}` {
		t.Fatalf("plain error: %q", got)
	}
	c.send(`40{"token":"panic"}`)
	if got := c.read(); got != `44{"message":"internal error"}` {
		t.Fatalf("panicking middleware: %q", got)
	}
	c.send("40/random")
	if got := c.read(); got != `44/random,{"message":"Invalid namespace"}` {
		t.Fatalf("unknown namespace: %q", got)
	}
	c.connect(`{"token":"good"}`)
	c.connect(`/admin,`)
	if got := c.read(); got != `42/admin,["admin"]` {
		t.Fatalf("admin namespace: %q", got)
	}
	c.send(`42/other,["x"]`) // a namespace it did not join: a protocol error
	if code := c.closed(); code == 0 {
		t.Fatal("no close frame")
	}
}

func TestConnectTimeout(t *testing.T) {
	_, base := start(t, Options{ConnectTimeout: 100 * time.Millisecond}, nil)
	c := dial(t, base)
	start := time.Now()
	c.closed()
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("closed after %v", el)
	}
}

// A handler's panic is recovered and logged with the socket id; the socket
// goes on.
func TestHandlerPanicLogged(t *testing.T) {
	logs := &logBuffer{}
	_, base := start(t, Options{Logger: slog.New(slog.NewJSONHandler(logs, nil))}, func(srv *Server) {
		srv.OnEvent("boom", func(*Socket, []any, AckFunc) { panic("handler bug") })
		srv.OnEvent("ping", func(_ *Socket, _ []any, ack AckFunc) { ack("pong") })
	})
	c := dial(t, base)
	sid := c.connect(`{"token":"secret-token"}`)
	c.send(`42["boom"]`)
	c.send(`421["ping"]`)
	if got := c.read(); got != `431["pong"]` {
		t.Fatalf("after the panic: %q", got)
	}
	out := logs.String()
	if !strings.Contains(out, `"msg":"socket.io: handler panicked"`) || !strings.Contains(out, `"sid":"`+sid+`"`) {
		t.Fatalf("log: %s", out)
	}
	if strings.Contains(out, "secret-token") {
		t.Fatal("the auth payload was logged")
	}
}

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// The disconnect handler runs after the connection handler and exactly
// once, even when the transport dies while the connection handler runs.
func TestDisconnectAfterConnectionOnce(t *testing.T) {
	var mu sync.Mutex
	var events []string
	note := func(s string) { mu.Lock(); events = append(events, s); mu.Unlock() }
	inHandler := make(chan struct{})
	_, base := start(t, Options{}, func(srv *Server) {
		srv.OnConnection(func(s *Socket) {
			note("connect")
			close(inHandler)
			time.Sleep(150 * time.Millisecond)
			note("connect done")
		})
		srv.OnDisconnect(func(_ *Socket, reason string) { note("disconnect " + reason) })
	})
	c := dial(t, base)
	c.send("40")
	<-inHandler
	c.c.Close()
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(events) == 3 })
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	// A reset (the client closed with our frames unread) is a transport error.
	got := strings.Join(events, "|")
	if got != "connect|connect done|disconnect transport close" && got != "connect|connect done|disconnect transport error" {
		t.Fatalf("events %q", events)
	}
}

// Broadcasts reach each selected socket once; socket.To leaves the sender out.
func TestBroadcasts(t *testing.T) {
	socks := make(chan *Socket, 3)
	srv, base := start(t, Options{}, func(srv *Server) {
		srv.OnConnection(func(s *Socket) { socks <- s })
	})
	var cs []*raw
	var ss []*Socket
	for range 3 {
		c := dial(t, base)
		c.connect("")
		cs = append(cs, c)
		ss = append(ss, <-socks)
	}
	ss[0].Join("r1", "r2")
	ss[1].Join("r1")
	ss[2].Join("r2")
	_ = srv.To("r1", "r2").Emit("m", 1)
	_ = ss[0].To("r1").Emit("m", 2)
	_ = srv.Except("r1").Emit("m", 3)
	_ = srv.To(ss[1].ID()).Emit("m", 4)
	_ = srv.In("r2").SocketsLeave("r2")
	_ = srv.To("r2").Emit("m", 5)
	_ = srv.Emit("m", 6)
	want := [][]int{{1, 6}, {1, 2, 4, 6}, {1, 3, 6}}
	for i, c := range cs {
		for _, n := range want[i] {
			// With recovery on (the default), a broadcast carries its offset last.
			got := c.read()
			if !strings.HasPrefix(got, fmt.Sprintf(`42["m",%d,"`, n)) {
				t.Fatalf("socket %d: %q, want m %d", i, got, n)
			}
		}
	}
	rs, err := srv.root.FetchSockets(context.Background())
	if err != nil || len(rs) != 3 {
		t.Fatalf("FetchSockets: %v %v", rs, err)
	}
	if err := srv.root.DisconnectSockets(false); err != nil {
		t.Fatal(err)
	}
	for i, c := range cs {
		if got := c.read(); got != "41" {
			t.Fatalf("socket %d: %q", i, got)
		}
	}
}

// Acknowledgements from the server's side: blocking, with a callback and
// timeout, and failing on disconnect.
func TestServerAcks(t *testing.T) {
	socks := make(chan *Socket, 1)
	_, base := start(t, Options{}, func(srv *Server) { srv.OnConnection(func(s *Socket) { socks <- s }) })
	c := dial(t, base)
	c.connect("")
	s := <-socks

	res := make(chan []any, 1)
	go func() {
		a, err := s.EmitWithAck(context.Background(), "q", 1)
		if err != nil {
			t.Error(err)
		}
		res <- a
	}()
	q := c.read()
	id := q[2:strings.Index(q, "[")]
	if q != "42"+id+`["q",1]` {
		t.Fatalf("question %q", q)
	}
	c.send("43" + id + `["answer",{"n":2}]`)
	if a := <-res; len(a) != 2 || a[0] != "answer" {
		t.Fatalf("answer %v", a)
	}

	errs := make(chan error, 2)
	_ = s.EmitAck(50*time.Millisecond, func(_ []any, err error) { errs <- err }, "late")
	c.read()
	if err := <-errs; !errors.Is(err, ErrAckTimeout) {
		t.Fatalf("timeout: %v", err)
	}
	_ = s.EmitAck(0, func(_ []any, err error) { errs <- err }, "never")
	c.read()
	c.c.Close()
	if err := <-errs; !errors.Is(err, ErrDisconnected) {
		t.Fatalf("disconnect: %v", err)
	}
}

// A client that sends faster than its handlers run is cut off at
// MailboxSize.
func TestMailboxOverflow(t *testing.T) {
	release := make(chan struct{})
	srv, base := start(t, Options{MailboxSize: 4}, func(srv *Server) {
		srv.OnEvent("slow", func(*Socket, []any, AckFunc) { <-release })
	})
	defer close(release)
	c := dial(t, base)
	c.connect("")
	for range 20 {
		c.send(`42["slow"]`)
	}
	c.closed()
	if n := srv.Stats().Overflows; n != 1 {
		t.Fatalf("overflows %d", n)
	}
}

// Server.Close closes every connection; disconnect handlers get "server
// shutting down" and the clients a close frame (they reconnect elsewhere).
func TestServerClose(t *testing.T) {
	var reason atomic.Value
	srv, err := NewServer(Options{PingInterval: time.Minute, PingTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	srv.OnDisconnect(func(_ *Socket, r string) { reason.Store(r) })
	hs := httptest.NewServer(srv)
	defer hs.Close()
	c := dial(t, hs.URL+"/socket.io/")
	c.connect("")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if code := c.closed(); code != websocket.CloseGoingAway {
		t.Fatalf("close code %d", code)
	}
	if reason.Load() != ReasonServerShutdown {
		t.Fatalf("reason %v", reason.Load())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A client that stops reading is cut off even when the packet that passes
// its backlog comes from a broadcast (which holds the adapter's lock that the
// disconnect needs): no deadlock, the others go on.
func TestCutOffDuringBroadcast(t *testing.T) {
	srv, base := start(t, Options{MaxPayload: 16 << 10, MaxBacklog: 64 << 10}, nil)
	reader := dial(t, base)
	reader.connect("")
	u := "ws" + strings.TrimPrefix(base, "http") + "?EIO=4&transport=websocket"
	d := websocket.Dialer{ReadBufferSize: 1024}
	lazy, _, err := d.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lazy.Close()
	_ = lazy.UnderlyingConn().(interface{ SetReadBuffer(int) error }).SetReadBuffer(4096)
	_, _, _ = lazy.ReadMessage()
	_ = lazy.WriteMessage(websocket.TextMessage, []byte("40"))
	waitFor(t, func() bool { return srv.Stats().Sockets == 2 })
	payload := strings.Repeat("p", 8<<10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Paced: a burst over MaxBacklog would cut off a reading client too.
		for i := 0; i < 5000 && srv.Stats().Engine.CutOff == 0; i++ {
			_ = srv.Emit("big", payload)
			time.Sleep(200 * time.Microsecond)
		}
	}()
	go func() {
		for {
			_ = reader.c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, _, err := reader.c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("broadcasts stuck (deadlock?)")
	}
	if srv.Stats().Engine.CutOff != 1 {
		t.Fatalf("stats %+v", srv.Stats())
	}
	waitFor(t, func() bool { return srv.Stats().Sockets == 1 })
}

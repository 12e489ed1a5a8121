package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// burst is what the server sends right before closing: enough bytes that
// the WebSocket writer is still busy when the close comes.
const (
	burstFrames    = 200
	burstFrameSize = 10_000
)

// closeAfterBurst serves Socket.IO over WebSocket; every socket gets a burst
// of frames and is then closed by closeFn. It returns what a raw client
// received: the number of burst frames, and whether a DISCONNECT packet came.
func closeAfterBurst(t *testing.T, closeFn func(*socket.Socket)) (frames int, disconnect bool) {
	t.Helper()
	o := socket.DefaultServerOptions()
	o.SetServeClient(false)
	o.SetTransports(types.NewSet(socket.WebSocket))
	io := socket.NewServer(nil, o)
	payload := strings.Repeat("x", burstFrameSize)
	_ = io.On("connection", func(args ...any) {
		s := args[0].(*socket.Socket)
		for i := 0; i < burstFrames; i++ {
			_ = s.Emit("frame", i, payload)
		}
		closeFn(s)
	})
	hs := httptest.NewServer(io.ServeHandler(nil))
	defer hs.Close()
	defer io.Close(nil)

	c := dialEngineIO(t, hs.URL)
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte("40")); err != nil {
		t.Fatal(err)
	}
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				t.Fatal("the connection was not closed within 10s")
			}
			return frames, disconnect
		}
		switch m := string(msg); {
		case strings.HasPrefix(m, `42["frame"`):
			frames++
		case m == "41":
			disconnect = true
		}
	}
}

// dialEngineIO opens a raw WebSocket Engine.IO session at the server at base
// URL and reads its OPEN packet; reads time out after 10 s.
func dialEngineIO(t *testing.T, base string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, open, err := c.ReadMessage(); err != nil || !strings.HasPrefix(string(open), "0{") {
		c.Close()
		t.Fatalf("open packet %q: %v", open, err)
	}
	return c
}

// closeAfterFlush, our workaround, delivers every frame emitted before it
// and then closes the transport without a Socket.IO DISCONNECT, so that the
// client sees "transport close" and reconnects by itself.
func TestCloseAfterFlushDeliversEverythingThenCloses(t *testing.T) {
	frames, disconnect := closeAfterBurst(t, func(s *socket.Socket) { closeAfterFlush(s, 5*time.Second) })
	if frames != burstFrames {
		t.Errorf("client got %d of %d frames emitted before the close", frames, burstFrames)
	}
	if disconnect {
		t.Error("client got a DISCONNECT packet: the React app would not reconnect")
	}
}

// The library defect closeAfterFlush works around (zishang520/socket.io
// v3.0.6, WebSocket): Disconnect(true) closes the connection while frames
// are still queued, so they are lost, and its DISCONNECT packet never
// arrives. It is a race, lost most of the time: the test tries a few times.
// When it fails, the library was fixed and closeAfterFlush may be revisited.
func TestLibraryDisconnectDropsQueuedFrames(t *testing.T) {
	for try := 1; try <= 5; try++ {
		frames, disconnect := closeAfterBurst(t, func(s *socket.Socket) { s.Disconnect(true) })
		if frames < burstFrames || !disconnect {
			t.Logf("try %d: Disconnect(true) delivered %d of %d frames; DISCONNECT packet received: %v", try, frames, burstFrames, disconnect)
			return
		}
	}
	t.Fatal("Disconnect(true) delivered every frame and the DISCONNECT packet 5 times out of 5: the defect looks fixed")
}

// dialRaw opens a raw Engine.IO WebSocket to a Socket.IO server, connects
// to the main namespace and waits for the server's "ready" event, which its
// connection handler emits: only then may the client send events (before,
// the library's connect-order race can close the connection; connectgate.go).
func dialRaw(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	c := dialEngineIO(t, url)
	t.Cleanup(func() { c.Close() })
	if err := c.WriteMessage(websocket.TextMessage, []byte("40")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.ReadMessage(); err != nil || !strings.HasPrefix(string(msg), "40{") {
		t.Fatalf("connect answer %q: %v", msg, err)
	}
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != `42["ready"]` {
		t.Fatalf("ready event %q: %v", msg, err)
	}
	return c
}

// The library defect that makes the gateway refuse binary payloads
// (payloadOf): a Buffer a client sends arrives as a reader, and emitting it
// twice sends it empty the second time. When this test fails, the library
// was fixed.
func TestLibraryReEmittedBinaryIsEmpty(t *testing.T) {
	o := socket.DefaultServerOptions()
	o.SetServeClient(false)
	o.SetTransports(types.NewSet(socket.WebSocket))
	io := socket.NewServer(nil, o)
	_ = io.On("connection", func(args ...any) {
		s := args[0].(*socket.Socket)
		_ = s.On("bin", func(args ...any) {
			_ = s.Emit("echo", args[0])
			_ = s.Emit("echo", args[0])
		})
		_ = s.Emit("ready") // see dialRaw
	})
	hs := httptest.NewServer(io.ServeHandler(nil))
	defer hs.Close()
	defer io.Close(nil)

	c := dialRaw(t, hs.URL)
	sent := []byte("\x89PNG some image bytes")
	if err := c.WriteMessage(websocket.TextMessage, []byte(`451-["bin",{"_placeholder":true,"num":0}]`)); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(websocket.BinaryMessage, sent); err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	for len(got) < 2 {
		mt, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("after %d attachments: %v", len(got), err)
		}
		if mt == websocket.BinaryMessage {
			got = append(got, msg)
		}
	}
	if string(got[0]) != string(sent) {
		t.Fatalf("first echo %q, want %q", got[0], sent)
	}
	if string(got[1]) == string(sent) {
		t.Fatal("the second emit of a received binary carried its bytes: the defect is gone")
	}
	t.Logf("second emit of a received %d-byte binary carried %d bytes", len(sent), len(got[1]))
}

// The library defect pollingGuard works around: a long-polling POST whose
// body is not Engine.IO leaves the session open (the Node server closes it).
// Through pollingGuard the session is closed at once.
func TestPollingGuardClosesSessionOnMalformedPOST(t *testing.T) {
	o := socket.DefaultServerOptions()
	o.SetServeClient(false)
	o.SetTransports(types.NewSet(socket.Polling))
	o.SetPingInterval(20 * time.Second)
	io := socket.NewServer(nil, o)
	a := &api{HTTPDeps: HTTPDeps{Hub: &Hub{io: io}, MaxBodyBytes: 1 << 20}}
	bare := httptest.NewServer(io.ServeHandler(nil))
	defer bare.Close()
	guarded := httptest.NewServer(a.pollingGuard(io.ServeHandler(nil)))
	defer guarded.Close()
	defer io.Close(nil)

	for _, tc := range []struct {
		name      string
		url       string
		wantClose bool
	}{
		{"library alone keeps the session (defect)", bare.URL, false},
		{"through pollingGuard", guarded.URL, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sid := pollingHandshake(t, tc.url)
			u := tc.url + "/socket.io/?EIO=4&transport=polling&sid=" + sid
			status, _ := httpCall(t, "POST", u, "x", 5*time.Second)
			if tc.wantClose && status != 400 {
				t.Errorf("malformed POST answered %d, want 400", status)
			}
			status, body := httpCall(t, "GET", u, "", 2*time.Second)
			closed := status == 400 || body == "1" || strings.Contains(body, "\x1e1")
			if closed != tc.wantClose {
				t.Errorf("after a malformed POST the next poll answered %d %q; session closed: %v, want %v", status, body, closed, tc.wantClose)
			}
		})
	}
}

func pollingHandshake(t *testing.T, base string) string {
	t.Helper()
	status, body := httpCall(t, "GET", base+"/socket.io/?EIO=4&transport=polling", "", 5*time.Second)
	i := strings.Index(body, `"sid":"`)
	if status != 200 || i < 0 {
		t.Fatalf("handshake %d %q", status, body)
	}
	sid := body[i+len(`"sid":"`):]
	return sid[:strings.IndexByte(sid, '"')]
}

// httpCall returns status 0 and no body when no answer came within timeout.
func httpCall(t *testing.T, method, url, body string, timeout time.Duration) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ""
		}
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil && ctx.Err() != nil {
		return 0, ""
	}
	return resp.StatusCode, string(b)
}

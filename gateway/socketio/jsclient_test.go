package socketio

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The real socket.io-client 4.8 (the React app's client, installed in
// test/jsclient by `make test-deps`) against this layer, over polling with
// the upgrade and over WebSocket only: middleware, acks both ways, binary
// both ways, and a transport-level close after which the client reconnects
// by itself and recovers its session and the broadcasts it missed.
func TestRealSocketIOClient(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is needed to drive socket.io-client: %v", err)
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "test", "jsclient", "layer.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(script), "node_modules", "socket.io-client")); err != nil {
		t.Fatalf("socket.io-client is not installed (run make test-deps): %v", err)
	}
	_, base := start(t, Options{PingInterval: 200 * time.Millisecond, PingTimeout: 500 * time.Millisecond}, func(srv *Server) {
		srv.Use(func(s *Socket) error {
			if s.Handshake().Auth["token"] != "ok" {
				return &ConnectError{Message: "authentication refused", Data: map[string]any{"code": "BAD"}}
			}
			return nil
		})
		srv.OnConnection(func(s *Socket) {
			s.Join("room")
			_ = s.Emit("welcome", map[string]any{"recovered": s.Recovered()})
		})
		srv.OnEvent("echo", func(_ *Socket, args []any, ack AckFunc) { ack(args...) })
		srv.OnEvent("ask", func(s *Socket, _ []any, _ AckFunc) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			answer, err := s.EmitWithAck(ctx, "question", 41)
			if err != nil {
				t.Errorf("EmitWithAck: %v", err)
				return
			}
			_ = s.Emit("answered", answer)
		})
		srv.OnEvent("bin", func(s *Socket, args []any, _ AckFunc) {
			file := args[0].(map[string]any)["file"].([]byte)
			_ = s.Emit("bin-back", file)
			_ = s.Emit("bin-back", file)
		})
		srv.OnEvent("kick", func(s *Socket, _ []any, _ AckFunc) {
			s.CloseTransport()
			// Broadcast while the client is away: recovery replays these.
			for i := range 3 {
				_ = srv.To("room").Emit("missed", i)
			}
		})
	})
	for _, transports := range []string{`["polling","websocket"]`, `["websocket"]`} {
		t.Run(transports, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			origin := strings.TrimSuffix(base, "/socket.io/") // a path in the URL would be a namespace
			out, err := exec.CommandContext(ctx, "node", script, origin, transports).Output()
			if err != nil {
				t.Fatalf("node: %v\n%s", err, out)
			}
			var r struct {
				OK               bool
				Error            string
				Transport        string
				Welcome          map[string]any
				WelcomeAfter     map[string]any
				Echo             []any
				Answered         []any
				BinBack          []any
				DisconnectReason string
				SameID           bool
				Recovered        bool
				Missed           [][]any
			}
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("report %s: %v", out, err)
			}
			if !r.OK {
				t.Fatalf("client: %s (report %s)", r.Error, out)
			}
			bin := func(b64 string) any { return map[string]any{"$binary": b64} }
			// Direct emits carry the recovery offset last, as in Node.
			if r.Transport != "websocket" || r.Welcome["recovered"] != false || r.WelcomeAfter["recovered"] != true {
				t.Errorf("transport %s, welcome %v, after %v", r.Transport, r.Welcome, r.WelcomeAfter)
			}
			if want := []any{"a", map[string]any{"n": 1.0, "nested": []any{true, nil}}, bin("AQID")}; !reflect.DeepEqual(r.Echo, want) {
				t.Errorf("echo %v, want %v", r.Echo, want)
			}
			if !reflect.DeepEqual(r.Answered, []any{42.0, "from the client"}) {
				t.Errorf("answered %v", r.Answered)
			}
			if want := []any{bin("AAEC/w=="), bin("AAEC/w==")}; !reflect.DeepEqual(r.BinBack, want) {
				t.Errorf("binary back %v", r.BinBack)
			}
			if r.DisconnectReason != "transport close" || !r.SameID || !r.Recovered {
				t.Errorf("after the kick: reason %q, same id %v, recovered %v", r.DisconnectReason, r.SameID, r.Recovered)
			}
			for i, m := range r.Missed {
				if len(m) != 2 || m[0] != float64(i) {
					t.Errorf("missed %d: %v (want the value then its offset)", i, m)
				}
			}
		})
	}
}

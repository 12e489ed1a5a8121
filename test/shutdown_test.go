package test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGTERM: /readyz turns 503 while sockets still work, then every socket is
// closed at the transport level (never with a Socket.IO DISCONNECT, which
// would strand the React app: it never calls connect() again), the process
// exits 0 without hitting its shutdown deadline, and the clients reconnect
// by themselves when the server is back on the same address.
func TestGracefulShutdownAndReconnect(t *testing.T) {
	srv := startServer(t, "SHUTDOWN_DRAIN_DELAY=2s", "SHUTDOWN_TIMEOUT=15s")
	srv.putRoom(t, "room-g", alice, bob)
	c := newJS(t, srv)
	clients := map[string]map[string]any{
		"polling-only":    {"transports": []string{"polling"}},
		"polling+upgrade": transports["polling+upgrade"],
		"websocket-only":  transports["websocket-only"],
	}
	for name, tr := range clients {
		c.connect(name, token(alice), tr, map[string]any{"reconnection": true})
		wantOK(t, name+" joins", c.emitAck(name, "joinChat", map[string]any{"chatRoomId": "room-g"}))
	}
	if st := c.state("polling-only"); st["transport"] != "polling" {
		t.Fatalf("polling-only client is on %v", st["transport"])
	}

	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Draining: not ready for new sockets, but current ones still work.
	eventually(t, 5*time.Second, func() error {
		if code, _ := srv.api(t, "GET", "/readyz", nil, nil); code != 503 {
			return errNotYet
		}
		return nil
	})
	send(t, c, "websocket-only", "room-g", "while draining")

	for name := range clients {
		reason, err := c.tryWait(name, "$disconnect", 15*time.Second)
		if err != nil {
			t.Fatalf("%s was not disconnected by the shutdown: %v", name, err)
		}
		if r := fmt.Sprint(reason[0]); r != "transport close" && r != "transport error" {
			t.Errorf("%s: disconnect reason %q; a server-side disconnect strands the app", name, r)
		}
	}
	select {
	case err := <-srv.exited:
		srv.cmd = nil
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, tail(srv.Logs(), 40))
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("still running 20s after SIGTERM\n%s", tail(srv.Logs(), 40))
	}
	logs := srv.Logs()
	if !strings.Contains(logs, `"msg":"stopped"`) {
		t.Errorf("no orderly stop logged")
	}
	for _, bad := range []string{"still in flight", "http shutdown", "did not finish"} {
		if strings.Contains(logs, bad) {
			t.Errorf("shutdown hit a deadline: log has %q\n%s", bad, tail(logs, 40))
		}
	}

	// Back on the same address: each client reconnects by itself, and works.
	srv.startOn(srv.port)
	for name := range clients {
		r := c.call(map[string]any{"op": "waitReconnect", "name": name, "timeoutMs": 20000})
		if r["ok"] != true {
			t.Fatalf("%s did not reconnect by itself: %v", name, r["error"])
		}
		wantOK(t, name+" rejoins", c.emitAck(name, "joinChat", map[string]any{"chatRoomId": "room-g"}))
	}
	m := send(t, c, "polling-only", "room-g", "after the restart")
	for name := range clients {
		eventually(t, 5*time.Second, func() error {
			for _, got := range c.drain(name, "newMessage") {
				if got.(map[string]any)["_id"] == m["_id"] {
					return nil
				}
			}
			return fmt.Errorf("%s did not get the message sent after the restart", name)
		})
	}
}

package test

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"
)

// TestConnectThenDropLeavesNoGhost drops 1,000 connections of one user right
// around their CONNECT (half before reading the answer, half just after),
// while the server is still running the connection handler. Every one must be
// torn down: no socket left in /readyz or the gauge, and presence right —
// each userOnline the room heard has its userOffline, and the user's next
// real connection is announced online again (a ghost would keep the user
// online forever and swallow that announcement).
func TestConnectThenDropLeavesNoGhost(t *testing.T) {
	n := 1000
	if s := os.Getenv("COMMSERVER_GHOSTS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	srv := startServer(t)
	srv.putRoom(t, "room-ghost", alice, bob)
	c := newJS(t, srv)
	c.connect("bob", token(bob))
	wantOK(t, "bob joins", c.emitAck("bob", "joinChat", map[string]any{"chatRoomId": "room-ghost"}))

	u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	connectPacket := []byte(`40{"token":"` + token(alice) + `"}`)
	jobs := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for w := 0; w < 20; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := connectThenDrop(u, connectPacket, i%2 == 0); err != nil {
					errs <- fmt.Errorf("drop %d: %w", i, err)
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Only bob's socket is left, in /readyz and in the gauge.
	eventually(t, 30*time.Second, func() error {
		code, body := srv.api(t, "GET", "/readyz", nil, nil)
		if code != 200 || body["sockets"] != float64(1) {
			return fmt.Errorf("/readyz %d %v, want 1 socket", code, body)
		}
		if g := gauge(t, srv, "commserver_sockets_connected"); g != 1 {
			return fmt.Errorf("commserver_sockets_connected %v, want 1", g)
		}
		return nil
	})

	// Presence: a marker (alice's real connection) comes after everything
	// the drops announced. Up to it, onlines and offlines pair up.
	sid := c.connect("alice", token(alice))["sid"]
	var online, offline int
	for {
		args, err := c.tryWait("bob", "userOnline", 20*time.Second)
		if err != nil {
			t.Fatalf("alice's real connection was not announced online after %d drops (a ghost holds her online): %v", n, err)
		}
		online++
		if p, _ := args[0].(map[string]any); p["socketId"] == sid {
			break
		}
	}
	offline = len(c.drain("bob", "userOffline"))
	if online-1 != offline {
		t.Fatalf("bob heard %d userOnline for the drops but %d userOffline", online-1, offline)
	}
	c.close("alice")
	if p, _ := c.waitEvent("bob", "userOffline", 10*time.Second).(map[string]any); p["userId"] != alice {
		t.Fatalf("userOffline %v, want alice", p)
	}
}

// connectThenDrop opens a WebSocket, sends CONNECT and closes the TCP
// connection: at once, or right after reading the CONNECT answer.
func connectThenDrop(url string, connect []byte, readAnswer bool) error {
	c, _, err := ws.DefaultDialer.Dial(url, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := c.ReadMessage(); err != nil { // OPEN
		return err
	}
	if err := c.WriteMessage(ws.TextMessage, connect); err != nil {
		return err
	}
	if readAnswer {
		if _, m, err := c.ReadMessage(); err != nil {
			return err
		} else if !strings.HasPrefix(string(m), "40") {
			return fmt.Errorf("CONNECT answered %q", m)
		}
	}
	return nil
}

// gauge reads one unlabelled gauge from /metrics.
func gauge(t testing.TB, srv *server, name string) float64 {
	t.Helper()
	r := srv.do(t, "GET", "/metrics", nil, nil)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(r.raw)
	if m == nil {
		t.Fatalf("no %s in /metrics", name)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

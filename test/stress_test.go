package test

import (
	"os"
	"strings"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"
)

// TestEventRightAfterConnect sends an event the moment the CONNECT answer
// arrives, 300 times, over raw WebSocket. Under -race on a machine whose two
// cores are otherwise busy, the server has been seen closing the connection
// (1006, no close frame) before the ack, about once in 100-300 sockets; the
// cause is not found yet. Opt-in, so CI is not flaky until it is fixed:
//
//	COMMSERVER_STRESS=1 go test -race -count=1 -run TestEventRightAfterConnect ./test/
//
// (with two busy loops running, e.g. `sh -c 'while :; do :; done' &` twice).
func TestEventRightAfterConnect(t *testing.T) {
	if os.Getenv("COMMSERVER_STRESS") == "" {
		t.Skip("opt-in: COMMSERVER_STRESS=1 (an open defect, see the comment)")
	}
	srv := startServer(t)
	srv.putRoom(t, "room-go", alice, bob)
	u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	for i := 0; i < 300; i++ {
		c, _, err := ws.DefaultDialer.Dial(u, nil)
		if err != nil {
			t.Fatal(err)
		}
		stage := "open"
		read := func() string {
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, m, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("iteration %d at %s: read: %v", i, stage, err)
			}
			return string(m)
		}
		read() // open
		stage = "connect"
		_ = c.WriteMessage(ws.TextMessage, []byte(`40{"token":"`+token(alice)+`"}`))
		if m := read(); !strings.HasPrefix(m, "40") {
			t.Fatalf("got %q", m)
		}
		stage = "ack"
		_ = c.WriteMessage(ws.TextMessage, []byte(`420["joinChat",{"chatRoomId":"room-go"}]`))
		for {
			m := read()
			if strings.HasPrefix(m, "430") {
				break
			}
		}
		c.Close()
	}
}

package test

import (
	"fmt"
	"testing"
	"time"
)

// A burst of messages reaches every receiver once each, in the order sent,
// whatever the receiver's transport: WebSocket clients through the server's
// own frame path, long-polling clients through the library's. An admin in
// both the room and admin-room gets each message once.
func TestBurstArrivesOnceInOrderOnEveryTransport(t *testing.T) {
	srv := startServer(t, "SOCKET_EVENTS_PER_MINUTE=100000", "SOCKET_EVENT_BURST=1000")
	srv.putRoom(t, "burst", alice, bob, carol)
	c := newJS(t, srv)
	c.connect("alice", token(alice), map[string]any{"transports": []string{"websocket"}})
	c.connect("bob", token(bob), map[string]any{"transports": []string{"polling"}})
	c.connect("carol", token(carol), map[string]any{"transports": []string{"polling", "websocket"}})
	c.connect("admin", token(admin, "role", "admin"), map[string]any{"transports": []string{"websocket"}})
	for _, n := range []string{"alice", "bob", "carol", "admin"} {
		if ack := c.emitAck(n, "joinChat", map[string]any{"chatRoomId": "burst"}); ack["ok"] != true {
			t.Fatalf("%s joinChat: %v", n, ack)
		}
	}
	if ack := c.emitAck("admin", "joinAsAdmin"); ack["ok"] != true {
		t.Fatalf("joinAsAdmin: %v", ack)
	}
	const n = 200
	for i := range n {
		c.emit("alice", "sendMessage", map[string]any{"chatRoomId": "burst", "message": fmt.Sprintf("m%03d", i)})
	}
	for _, who := range []string{"alice", "bob", "carol", "admin"} {
		for i := range n {
			m, ok := c.waitEvent(who, "newMessage").(map[string]any)
			if !ok || m["message"] != fmt.Sprintf("m%03d", i) {
				t.Fatalf("%s: message %d is %v", who, i, m)
			}
		}
		c.noEvent(who, "newMessage", 300*time.Millisecond) // nothing twice
	}
}

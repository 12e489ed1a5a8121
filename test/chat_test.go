package test

import (
	"testing"
	"time"
)

// transports are the two ways the React app's client can connect.
var transports = map[string]map[string]any{
	"polling+upgrade": {"transports": []string{"polling", "websocket"}},
	"websocket-only":  {"transports": []string{"websocket"}},
}

func TestTwoMembersChatAndAThirdIsRefused(t *testing.T) {
	srv := startServer(t)
	srv.putRoom(t, "room-1", alice, bob)
	for name, tr := range transports {
		t.Run(name, func(t *testing.T) {
			c := newJS(t, srv)
			a := c.connect("alice", token(alice), tr)
			if want := tr["transports"].([]string); len(want) == 2 && a["transport"] != "websocket" {
				t.Errorf("alice's transport after upgrade = %v", a["transport"])
			}
			c.connect("bob", token(bob), tr)
			c.connect("carol", token(carol), tr)
			for _, n := range []string{"alice", "bob", "carol"} {
				if got := c.waitEvent(n, "unreadNotificationCount"); got != float64(0) {
					t.Errorf("%s unreadNotificationCount = %v", n, got)
				}
			}

			// As the React app does: emit without an ack.
			c.emit("alice", "joinChat", map[string]any{"chatRoomId": "room-1"})
			if h, ok := c.waitEvent("alice", "chatHistory").([]any); !ok {
				t.Fatalf("chatHistory is %T", h)
			}
			ack := c.emitAck("bob", "joinChat", map[string]any{"chatRoomId": "room-1"})
			if ack["ok"] != true {
				t.Fatalf("bob joinChat ack %v", ack)
			}
			c.waitEvent("bob", "chatHistory")
			joined := c.waitEvent("alice", "userJoined").(map[string]any)
			if joined["userId"] != bob || joined["chatRoomId"] != "room-1" {
				t.Errorf("userJoined = %v", joined)
			}

			c.emit("alice", "sendMessage", map[string]any{"chatRoomId": "room-1", "message": "hi bob"})
			for _, n := range []string{"alice", "bob"} {
				m := c.waitEvent(n, "newMessage").(map[string]any)
				if m["message"] != "hi bob" || m["senderId"] != alice || m["chatRoomId"] != "room-1" || m["messageType"] != "text" {
					t.Errorf("%s newMessage = %v", n, m)
				}
				if id, _ := m["_id"].(string); len(id) != 24 {
					t.Errorf("%s newMessage _id = %v", n, m["_id"])
				}
			}

			// carol is not a member: refused, joined to nothing, no history.
			ack = c.emitAck("carol", "joinChat", map[string]any{"chatRoomId": "room-1"})
			if ack["ok"] != false || ack["error"].(map[string]any)["code"] != "FORBIDDEN" {
				t.Fatalf("carol joinChat ack %v", ack)
			}
			if e := c.waitEvent("carol", "error").(map[string]any); e["code"] != "FORBIDDEN" {
				t.Errorf("carol error event %v", e)
			}
			ack = c.emitAck("carol", "sendMessage", map[string]any{"chatRoomId": "room-1", "message": "let me in"})
			if ack["ok"] != false || ack["error"].(map[string]any)["code"] != "FORBIDDEN" {
				t.Fatalf("carol sendMessage ack %v", ack)
			}
			c.emit("bob", "sendMessage", map[string]any{"chatRoomId": "room-1", "message": "hello alice"})
			c.waitEvent("alice", "newMessage")
			c.noEvent("carol", "chatHistory", 200*time.Millisecond)
			c.noEvent("carol", "newMessage", 200*time.Millisecond)
		})
	}
}

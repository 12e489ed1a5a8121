package test

import (
	"fmt"
	"strings"
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
			c.connect("alice", token(alice), tr)
			// The upgrade from polling completes in the background.
			eventually(t, 5*time.Second, func() error {
				if st := c.state("alice"); st["transport"] != "websocket" {
					return fmt.Errorf("alice's transport is %v, want websocket (after the upgrade)", st["transport"])
				}
				return nil
			})
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

// The real-time fan-out on one server: admins, many sockets per user,
// presence, joins and leaves, and membership changes.
func TestRealTimeFanOut(t *testing.T) {
	srv := startServer(t)
	srv.putRoom(t, "room-a", alice, bob)
	srv.putRoom(t, "room-b", bob, carol)
	for name, tr := range transports {
		t.Run(name, func(t *testing.T) {
			c := newJS(t, srv)
			adminTok := token(admin, "role", "admin")

			// An admin watches: joinAsAdmin answers allChatUsers and an ack.
			c.connect("admin", adminTok, tr)
			ack := c.emitAck("admin", "joinAsAdmin")
			wantOK(t, "joinAsAdmin", ack)
			if _, ok := c.waitEvent("admin", "allChatUsers").([]any); !ok {
				t.Fatal("allChatUsers is not an array")
			}
			// As the React app does it, without an ack: the event alone.
			c.emit("admin", "joinAsAdmin")
			c.waitEvent("admin", "allChatUsers")

			// A user is refused with the seed's Korean message and a code.
			c.connect("carol", token(carol), tr)
			if on := c.waitEvent("admin", "userOnline").(map[string]any); on["userId"] != carol {
				t.Errorf("userOnline %v, want carol's", on)
			}
			wantCode(t, "carol joinAsAdmin", c.emitAck("carol", "joinAsAdmin"), "FORBIDDEN")
			if e := c.waitEvent("carol", "error").(map[string]any); e["message"] != "관리자 권한이 없습니다." || e["code"] != "FORBIDDEN" {
				t.Errorf("carol's error event %v", e)
			}

			// userOnline on bob's first socket only, userOffline on his last only.
			c.connect("bob1", token(bob), tr)
			on := c.waitEvent("admin", "userOnline").(map[string]any)
			if on["userId"] != bob || on["socketId"] == nil || on["socketId"] == "" {
				t.Errorf("userOnline %v", on)
			}
			c.connect("bob2", token(bob), tr)
			c.noEvent("admin", "userOnline", 200*time.Millisecond)

			// Two sockets of alice, both in room-a: each gets every message once.
			c.connect("alice1", token(alice), tr)
			c.connect("alice2", token(alice), tr)
			c.waitEvent("admin", "userOnline")
			for _, n := range []string{"alice1", "alice2", "bob1"} {
				wantOK(t, n+" joins room-a", c.emitAck(n, "joinChat", map[string]any{"chatRoomId": "room-a"}))
				c.waitEvent(n, "chatHistory")
			}
			// userJoined goes to the others in the room, not to the joiner.
			c.noEvent("bob1", "userJoined", 100*time.Millisecond)
			for _, who := range []string{alice, bob} { // alice2 joined, then bob1
				if j := c.waitEvent("alice1", "userJoined").(map[string]any); j["userId"] != who || j["chatRoomId"] != "room-a" {
					t.Errorf("alice1's userJoined %v, want %s's", j, who)
				}
			}
			c.noEvent("alice1", "userJoined", 100*time.Millisecond)
			// The admin joins room-a as well: it is in the room and in admin-room.
			wantOK(t, "admin joins room-a", c.emitAck("admin", "joinChat", map[string]any{"chatRoomId": "room-a"}))
			c.waitEvent("admin", "chatHistory")

			m := send(t, c, "alice1", "room-a", "to room a")
			for _, n := range []string{"alice1", "alice2", "bob1", "admin"} {
				got := c.waitEvent(n, "newMessage").(map[string]any)
				if got["_id"] != m["_id"] || got["message"] != "to room a" {
					t.Errorf("%s newMessage %v", n, got)
				}
			}
			// bob2 never joined room-a; carol is not a member.
			for _, n := range []string{"bob2", "carol"} {
				c.noEvent(n, "newMessage", 150*time.Millisecond)
			}
			// Exactly once each, the admin included.
			for _, n := range []string{"alice1", "alice2", "bob1", "admin"} {
				c.noEvent(n, "newMessage", 150*time.Millisecond)
			}

			// A message in a room the admin never joined still reaches admin-room.
			wantOK(t, "bob2 joins room-b", c.emitAck("bob2", "joinChat", map[string]any{"chatRoomId": "room-b"}))
			m = send(t, c, "bob2", "room-b", "to room b")
			if got := c.waitEvent("admin", "newMessage").(map[string]any); got["_id"] != m["_id"] {
				t.Errorf("admin got %v", got)
			}
			c.noEvent("alice1", "newMessage", 150*time.Millisecond)

			// leaveChat stops delivery to that socket only.
			wantOK(t, "alice2 leaves", c.emitAck("alice2", "leaveChat", map[string]any{"chatRoomId": "room-a"}))
			send(t, c, "bob1", "room-a", "after alice2 left")
			c.waitEvent("alice1", "newMessage")
			c.noEvent("alice2", "newMessage", 150*time.Millisecond)

			c.close("bob2")
			c.noEvent("admin", "userOffline", 200*time.Millisecond)
			c.close("bob1")
			if off := c.waitEvent("admin", "userOffline").(map[string]any); off["userId"] != bob {
				t.Errorf("userOffline %v", off)
			}
			c.close("alice1")
			c.close("alice2")
			c.waitEvent("admin", "userOffline")
			c.close("carol")
			c.waitEvent("admin", "userOffline")
			c.drain("admin", "newMessage")
		})
	}
}

// Membership is the main backend's: PUT /chat/rooms/:roomId needs the
// service credential; a member removed from a room stops hearing it at once
// and can no longer post or join.
func TestRoomMembershipChanges(t *testing.T) {
	srv := startServer(t)
	if code, body := srv.api(t, "PUT", "/chat/rooms/room-m", bearerOf(alice), map[string]any{"members": []string{alice}}); code != 403 {
		t.Fatalf("PUT room with a user's JWT: %d %v", code, body)
	}
	if code, body := srv.api(t, "PUT", "/chat/rooms/room-m", map[string]string{"X-API-Key": "wrong-key-0123456789"}, map[string]any{"members": []string{alice}}); code != 401 {
		t.Fatalf("PUT room with a wrong key: %d %v", code, body)
	}
	if code, body := srv.api(t, "PUT", "/chat/rooms/room-m", nil, map[string]any{"members": []string{alice}}); code != 401 {
		t.Fatalf("PUT room without credentials: %d %v", code, body)
	}
	for _, tc := range []struct {
		name string
		body any
		want int
	}{
		{"members a string", map[string]any{"members": "alice"}, 400},
		{"members missing", map[string]any{}, 400},
		{"a member not a string", map[string]any{"members": []any{alice, 42}}, 400},
		{"an empty member", map[string]any{"members": []string{alice, ""}}, 400},
		{"not JSON", "{members:", 400},
		{"empty body", "", 400},
		{"two JSON values", `{"members":[]} {}`, 400},
		{"over the body limit", `{"members":["` + strings.Repeat("m", 1_100_000) + `"]}`, 413},
	} {
		code, body := srv.api(t, "PUT", "/chat/rooms/room-m", serviceKey(), tc.body)
		e, _ := body["error"].(map[string]any)
		if code != tc.want || body["success"] != false || e["message"] == "" || e["message"] == "internal error" {
			t.Errorf("PUT room, %s: %d %v, want %d with a message", tc.name, code, body, tc.want)
		}
	}
	if code, body := srv.api(t, "PUT", "/chat/rooms/bad%20room", serviceKey(), map[string]any{"members": []string{alice}}); code != 400 {
		t.Errorf("PUT room with a bad id: %d %v", code, body)
	}
	srv.putRoom(t, "room-m", alice, bob)
	// An admin JWT is a service credential too.
	if code, body := srv.api(t, "GET", "/chat/rooms/room-m", bearerOf(admin, "roles", []string{"ROLE_ADMIN"}), nil); code != 200 {
		t.Fatalf("GET room as admin: %d %v", code, body)
	}

	c := newJS(t, srv)
	c.connect("alice", token(alice))
	c.connect("bob", token(bob))
	for _, n := range []string{"alice", "bob"} {
		wantOK(t, n+" joins", c.emitAck(n, "joinChat", map[string]any{"chatRoomId": "room-m"}))
	}
	send(t, c, "alice", "room-m", "before")
	c.waitEvent("bob", "newMessage")

	srv.putRoom(t, "room-m", alice)
	send(t, c, "alice", "room-m", "after bob was removed")
	c.waitEvent("alice", "newMessage")
	c.noEvent("bob", "newMessage", 200*time.Millisecond)
	wantCode(t, "removed bob posts", c.emitAck("bob", "sendMessage", map[string]any{"chatRoomId": "room-m", "message": "hi"}), "FORBIDDEN")
	ack := c.emitAck("bob", "joinChat", map[string]any{"chatRoomId": "room-m"})
	wantCode(t, "removed bob joins", ack, "FORBIDDEN")
	if _, leaked := ack["history"]; leaked {
		t.Errorf("refused join carries history: %v", ack)
	}
	c.drain("bob", "chatHistory")
	c.noEvent("bob", "chatHistory", 100*time.Millisecond)

	// A room nobody registered is refused like a room one is not a member of:
	// a non-member cannot tell which rooms exist.
	wantCode(t, "unregistered room", c.emitAck("bob", "joinChat", map[string]any{"chatRoomId": "no-such-room"}), "FORBIDDEN")
	wantCode(t, "post to an unregistered room", c.emitAck("bob", "sendMessage", map[string]any{"chatRoomId": "no-such-room", "message": "x"}), "FORBIDDEN")
	c.noEvent("bob", "chatHistory", 100*time.Millisecond)
}

// CHAT_ROOM_POLICY=open is the seed's behaviour: any user may join any room.
func TestOpenRoomPolicy(t *testing.T) {
	srv := startServer(t, "CHAT_ROOM_POLICY=open")
	c := newJS(t, srv)
	c.connect("carol", token(carol))
	c.connect("bob", token(bob))
	for _, n := range []string{"carol", "bob"} {
		wantOK(t, n+" joins", c.emitAck(n, "joinChat", map[string]any{"chatRoomId": "anything-goes"}))
		c.waitEvent(n, "chatHistory")
	}
	m := send(t, c, "carol", "anything-goes", "open door")
	if got := c.waitEvent("bob", "newMessage").(map[string]any); got["_id"] != m["_id"] {
		t.Fatalf("bob got %v", got)
	}
}

package test

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// History is on disk: it survives a restart, chatHistory is the newest 50
// newest first, and a reconnecting client can ask for what it missed.
func TestHistorySurvivesRestart(t *testing.T) {
	srv := startServer(t, "SOCKET_EVENT_BURST=100")
	srv.putRoom(t, "room-h", alice, bob)
	c := newJS(t, srv)
	c.connect("alice", token(alice))
	var ids []any
	for i := 1; i <= 55; i++ {
		ids = append(ids, send(t, c, "alice", "room-h", fmt.Sprintf("m%02d", i))["_id"])
	}
	c.close("alice")

	srv.Restart()
	c = newJS(t, srv)
	c.connect("bob", token(bob))
	c.emit("bob", "joinChat", map[string]any{"chatRoomId": "room-h"})
	h, _ := c.waitEvent("bob", "chatHistory").([]any)
	if len(h) != 50 {
		t.Fatalf("chatHistory has %d messages, want the newest 50", len(h))
	}
	var want []string
	for i := 55; i > 5; i-- {
		want = append(want, fmt.Sprintf("m%02d", i))
	}
	if got := texts(h); !slices.Equal(got, want) {
		t.Fatalf("chatHistory after restart, want newest first m55..m06:\n%v", got)
	}
	if h[0].(map[string]any)["_id"] != ids[54] {
		t.Errorf("newest message _id %v, want %v", h[0].(map[string]any)["_id"], ids[54])
	}
	// The sender, with no users document, is still an object with its _id
	// (Mongoose's populate gave null, which crashed clients reading senderId.name).
	if s, _ := h[0].(map[string]any)["senderId"].(map[string]any); s["_id"] != alice {
		t.Errorf("senderId %v", h[0].(map[string]any)["senderId"])
	}

	// A client that has m50 asks for what came after it.
	ack := c.emitAck("bob", "joinChat", map[string]any{"chatRoomId": "room-h", "since": ids[49]})
	wantOK(t, "joinChat since", ack)
	since, _ := c.waitEvent("bob", "chatHistory").([]any)
	if got := texts(since); !slices.Equal(got, []string{"m51", "m52", "m53", "m54", "m55"}) {
		t.Errorf("joinChat since m50 = %v, want m51..m55 oldest first", got)
	}
	wantCode(t, "since not an id", c.emitAck("bob", "joinChat", map[string]any{"chatRoomId": "room-h", "since": "yesterday"}), "INVALID_ARGUMENT")
}

// sendMessage with a clientMessageId is idempotent: a retry (after a lost
// ack, a reconnect, or a restart) returns the original message, stores
// nothing new and broadcasts nothing new.
func TestRetriedClientMessageIDStoresOneMessage(t *testing.T) {
	srv := startServer(t)
	srv.putRoom(t, "room-i", alice, bob)
	srv.putRoom(t, "room-j", alice, bob)
	c := newJS(t, srv)
	c.connect("alice", token(alice))
	c.connect("bob", token(bob))
	wantOK(t, "bob joins", c.emitAck("bob", "joinChat", map[string]any{"chatRoomId": "room-i"}))

	first := send(t, c, "alice", "room-i", "once", "clientMessageId", "c-1")
	if first["clientMessageId"] != "c-1" {
		t.Errorf("stored message lacks its clientMessageId: %v", first)
	}
	c.waitEvent("bob", "newMessage")
	again := send(t, c, "alice", "room-i", "once", "clientMessageId", "c-1")
	if again["_id"] != first["_id"] || again["timestamp"] != first["timestamp"] {
		t.Fatalf("retry returned %v, want the original %v", again, first)
	}
	c.noEvent("bob", "newMessage", 200*time.Millisecond)

	// Concurrent retries without waiting for an ack (as a client replaying its outbox).
	for i := 0; i < 5; i++ {
		c.emit("alice", "sendMessage", map[string]any{"chatRoomId": "room-i", "message": "burst", "clientMessageId": "c-2"})
	}
	c.waitEvent("bob", "newMessage")
	c.noEvent("bob", "newMessage", 300*time.Millisecond)

	// The same client id from another sender, or in another room, is another message.
	other := send(t, c, "bob", "room-i", "bob's", "clientMessageId", "c-1")
	elsewhere := send(t, c, "alice", "room-j", "elsewhere", "clientMessageId", "c-1")
	if other["_id"] == first["_id"] || elsewhere["_id"] == first["_id"] || other["_id"] == elsewhere["_id"] {
		t.Fatalf("client ids are not scoped by sender and room: %v %v %v", first["_id"], other["_id"], elsewhere["_id"])
	}
	c.drain("bob", "newMessage")

	// After a restart the retry still finds the original.
	srv.Restart()
	c = newJS(t, srv)
	c.connect("alice", token(alice))
	if again := send(t, c, "alice", "room-i", "once", "clientMessageId", "c-1"); again["_id"] != first["_id"] {
		t.Fatalf("retry after restart returned %v, want %v", again["_id"], first["_id"])
	}
	code, body := srv.api(t, "GET", "/chat/rooms/room-i/messages", bearerOf(alice), nil)
	if code != 200 || body["totalCount"] != float64(3) {
		t.Fatalf("room-i holds %v messages (%d), want 3: once, burst, bob's", body["totalCount"], code)
	}
}

package test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The store goes away (the proxy in front of it drops every connection and
// refuses new ones) and comes back. Meanwhile the sender of a message gets
// STORAGE_UNAVAILABLE and an error event, nobody receives a message that
// was not stored, the server stays up and unready, and everything works again
// once the store is back.
func TestStoreOutage(t *testing.T) {
	uri := startFerret(t)
	proxy, viaProxy := proxyFor(t, uri)
	srv := startServer(t, "MONGODB_URI="+viaProxy+"fitmate", "STORE_TIMEOUT=1s")
	srv.putRoom(t, "room-o", alice, bob)
	// One pass covers both transports: the sender upgrades from polling, the
	// receiver is WebSocket only.
	const tag = "outg" // clientMessageIds of this test start with it
	c := newJS(t, srv)
	c.connect("alice", token(alice), transports["polling+upgrade"])
	c.connect("bob", token(bob), transports["websocket-only"])
	for _, n := range []string{"alice", "bob"} {
		wantOK(t, n+" joins", c.emitAck(n, "joinChat", map[string]any{"chatRoomId": "room-o"}))
	}
	before := send(t, c, "alice", "room-o", "before the outage")
	c.waitEvent("bob", "newMessage")
	c.waitEvent("alice", "newMessage")

	proxy.Cut()
	defer proxy.Restore() // also when the test fails half way
	// Each send is answered (within the store timeout and its retries), refused.
	for i := 0; i < 2; i++ {
		ack := c.emitAck("alice", "sendMessage", map[string]any{"chatRoomId": "room-o", "message": fmt.Sprintf("lost %d", i),
			"clientMessageId": fmt.Sprintf("%s-lost-%d", tag, i)})
		wantCode(t, "send during the outage", ack, "STORAGE_UNAVAILABLE")
		e, _ := c.waitEvent("alice", "error").(map[string]any)
		if e["code"] != "STORAGE_UNAVAILABLE" || e["message"] != "메시지 전송에 실패했습니다." {
			t.Errorf("error event %v", e)
		}
	}
	// As the React app sends it, without an ack: still an error event.
	c.emit("alice", "sendMessage", map[string]any{"chatRoomId": "room-o", "message": "lost, no ack"})
	if e, _ := c.waitEvent("alice", "error", 10*time.Second).(map[string]any); e["code"] != "STORAGE_UNAVAILABLE" {
		t.Errorf("error event %v", e)
	}
	for _, n := range []string{"alice", "bob"} {
		c.noEvent(n, "newMessage", 300*time.Millisecond)
	}
	if code, body := srv.api(t, "GET", "/readyz", nil, nil); code != 503 {
		t.Errorf("/readyz during the outage: %d %v", code, body)
	}
	if code, body := srv.api(t, "GET", "/healthz", nil, nil); code != 200 {
		t.Errorf("/healthz during the outage: %d %v", code, body)
	}
	if code, body := srv.api(t, "GET", "/chat/rooms/room-o/messages", bearerOf(bob), nil); code != 503 {
		t.Errorf("REST history during the outage: %d %v", code, body)
	}
	// A socket that connects during the outage is accepted (the token
	// needs no store); its joinChat is refused as unavailable.
	c.connect("late", token(bob))
	wantCode(t, "join during the outage", c.emitAck("late", "joinChat", map[string]any{"chatRoomId": "no-cache-room"}), "STORAGE_UNAVAILABLE")
	if st := c.state("alice"); st["connected"] != true {
		t.Fatalf("alice was disconnected by the outage: %v", st)
	}

	proxy.Restore()
	eventually(t, 20*time.Second, func() error {
		if code, _ := srv.api(t, "GET", "/readyz", nil, nil); code != 200 {
			return errNotYet
		}
		return nil
	})
	var after map[string]any
	eventually(t, 20*time.Second, func() error {
		ack := c.emitAck("alice", "sendMessage", map[string]any{"chatRoomId": "room-o", "message": "after the outage",
			"clientMessageId": tag + "-after"})
		if ack["ok"] != true {
			return fmt.Errorf("send after the outage: %v", ack)
		}
		after, _ = ack["message"].(map[string]any)
		return nil
	})
	if got := c.waitEvent("bob", "newMessage").(map[string]any); got["_id"] != after["_id"] {
		t.Errorf("bob got %v, want the message sent after the outage", got)
	}
	// Only what was acknowledged is stored.
	code, body := srv.api(t, "GET", "/chat/rooms/room-o/messages"+query("limit", "100"), bearerOf(bob), nil)
	if code != 200 {
		t.Fatalf("history after the outage: %d %v", code, body)
	}
	var mine []string
	for _, m := range messagesOf(t, body) {
		if m["_id"] == before["_id"] || m["_id"] == after["_id"] {
			mine = append(mine, m["message"].(string))
			continue
		}
		if cid, _ := m["clientMessageId"].(string); strings.HasPrefix(cid, tag+"-lost") {
			t.Errorf("a refused message was stored: %v", m)
		}
		if m["message"] == "lost, no ack" {
			t.Errorf("a refused message was stored: %v", m)
		}
	}
	if len(mine) != 2 {
		t.Errorf("history holds %v of the acknowledged messages, want both", mine)
	}
}

// A server whose store is down when it starts comes up alive but unready,
// accepts sockets (tokens need no store), refuses what needs the store, and
// once the store answers becomes ready, creates its indexes (the unique
// clientMessageId index among them) and works.
func TestStoreDownAtStart(t *testing.T) {
	uri := startFerret(t)
	proxy, viaProxy := proxyFor(t, uri)
	proxy.Cut()
	defer proxy.Restore()
	srv := startServer(t, "MONGODB_URI="+viaProxy+"fitmate", "STORE_TIMEOUT=1s")
	if code, body := srv.api(t, "GET", "/readyz", nil, nil); code != 503 {
		t.Fatalf("/readyz with the store down: %d %v", code, body)
	}
	c := newJS(t, srv)
	c.connect("alice", token(alice), map[string]any{"reconnection": true})
	wantCode(t, "join with the store down", c.emitAck("alice", "joinChat", map[string]any{"chatRoomId": "room-d"}), "STORAGE_UNAVAILABLE")
	if code, body := srv.api(t, "PUT", "/chat/rooms/room-d", serviceKey(), map[string]any{"members": []string{alice, bob}}); code != 503 {
		t.Fatalf("PUT room with the store down: %d %v", code, body)
	}

	proxy.Restore()
	eventually(t, 30*time.Second, func() error {
		if code, _ := srv.api(t, "GET", "/readyz", nil, nil); code != 200 {
			return errNotYet
		}
		return nil
	})
	srv.putRoom(t, "room-d", alice, bob)
	c.connect("bob", token(bob))
	wantOK(t, "bob joins", c.emitAck("bob", "joinChat", map[string]any{"chatRoomId": "room-d"}))
	var first map[string]any
	eventually(t, 30*time.Second, func() error { // the indexes are created in the background
		ack := c.emitAck("alice", "sendMessage", map[string]any{"chatRoomId": "room-d", "message": "late start", "clientMessageId": "d-1"})
		if ack["ok"] != true {
			return fmt.Errorf("send: %v", ack)
		}
		first, _ = ack["message"].(map[string]any)
		return nil
	})
	again := send(t, c, "alice", "room-d", "late start", "clientMessageId", "d-1")
	if again["_id"] != first["_id"] {
		t.Fatalf("retry stored a second message: %v then %v", first["_id"], again["_id"])
	}
	c.waitEvent("bob", "newMessage")
	c.noEvent("bob", "newMessage", 200*time.Millisecond)
}

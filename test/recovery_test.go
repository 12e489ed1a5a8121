package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestRecoveryDeliversWhatWasMissed drops a member's connection under it (as
// a mobile network does) and posts in the room while it is away. Within
// SOCKET_RECOVERY_WINDOW the client reconnects into the same session: same
// socket id, still in the room, and the messages and notifications it missed
// arrive, each once, before anything newer.
func TestRecoveryDeliversWhatWasMissed(t *testing.T) {
	srv := startServer(t)
	srv.putRoom(t, "room-rec", alice, bob)
	for name, tr := range transports {
		t.Run(name, func(t *testing.T) {
			c := newJS(t, srv)
			first := c.connect("alice", token(alice), tr, map[string]any{"reconnection": true})
			c.connect("bob", token(bob), tr)
			for _, n := range []string{"alice", "bob"} {
				wantOK(t, n+" joins", c.emitAck(n, "joinChat", map[string]any{"chatRoomId": "room-rec"}))
			}
			before := send(t, c, "bob", "room-rec", "before the drop "+name)
			if m := c.waitEvent("alice", "newMessage").(map[string]any); m["_id"] != before["_id"] {
				t.Fatalf("alice got %v", m)
			}

			c.call(map[string]any{"op": "dropTransport", "name": "alice"})
			if _, err := c.tryWait("alice", "$disconnect", 5*time.Second); err != nil {
				t.Fatal(err)
			}
			var missed []string
			for i := 0; i < 3; i++ {
				missed = append(missed, send(t, c, "bob", "room-rec", fmt.Sprintf("missed %d %s", i, name))["_id"].(string))
			}
			code, _ := srv.api(t, "POST", "/notifications", serviceKey(), map[string]any{
				"userId": alice, "title": "t", "message": "while away " + name, "type": "system"})
			if code != 201 {
				t.Fatalf("POST /notifications: %d", code)
			}

			r := c.call(map[string]any{"op": "waitReconnect", "name": "alice", "timeoutMs": 10000})
			if r["ok"] != true {
				t.Fatalf("no reconnection: %v", r["error"])
			}
			st := c.state("alice")
			if st["recovered"] != true || st["sid"] != first["sid"] {
				t.Fatalf("not recovered: %v (first sid %v)", st, first["sid"])
			}
			for _, id := range missed {
				if m := c.waitEvent("alice", "newMessage").(map[string]any); m["_id"] != id {
					t.Fatalf("missed message %s, got %v", id, m["_id"])
				}
			}
			// The notification created while she was away (alice, offline
			// meanwhile, also got chat_message notifications for the missed messages).
			for {
				n := c.waitEvent("alice", "newNotification").(map[string]any)
				if n["message"] == "while away "+name {
					break
				}
				if n["type"] != "chat_message" {
					t.Fatalf("newNotification %v", n)
				}
			}
			// Still in the room: a new message arrives, once, after the missed ones.
			after := send(t, c, "bob", "room-rec", "after "+name)
			if m := c.waitEvent("alice", "newMessage").(map[string]any); m["_id"] != after["_id"] {
				t.Fatalf("after the recovery alice got %v, want %v", m["_id"], after["_id"])
			}
			c.close("alice")
			c.close("bob")
		})
	}
}

// TestRecoveryRunsTheHandshakeAgain: a recovered session is never restored
// on a token that is no longer good. The client's token expires while it is
// connected: the server closes its connection, the client reconnects at once
// asking to recover its session, and the handshake refuses it with
// TOKEN_EXPIRED all the same.
func TestRecoveryRunsTheHandshakeAgain(t *testing.T) {
	srv := startServer(t)
	c := newJS(t, srv)
	soon := shortToken(alice, 3*time.Second)
	c.connect("alice", soon, map[string]any{"reconnection": true})
	r := c.call(map[string]any{"op": "wait", "name": "alice", "event": "$connect_error", "timeoutMs": 15000})
	if r["ok"] != true {
		t.Fatalf("the reconnection on an expired token was not refused: %v", r["error"])
	}
	args, _ := r["args"].([]any)
	e, _ := args[0].(map[string]any)
	data, _ := e["data"].(map[string]any)
	if data["code"] != "TOKEN_EXPIRED" {
		t.Fatalf("connect_error %v, want TOKEN_EXPIRED", e)
	}
	// socket.io-client does not retry after a refusal: the app connects
	// again with a fresh token.
	c.connect("alice2", token(alice))
}

// shortToken is a token for user that expires after d.
func shortToken(user string, d time.Duration) string {
	claims := jwt.MapClaims{"sub": user, "iat": time.Now().Unix(), "exp": time.Now().Add(d).Unix()}
	t, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testSecret))
	if err != nil {
		panic(err)
	}
	return t
}

// TestOversizeTokenIsRefusedByName: a CONNECT whose auth holds a token of
// 1 MB (over the 1,000,000-byte payload limit) is answered connect_error
// TOKEN_TOO_LONG on both transports, so socket.io-client stops instead of
// retrying a bare close forever.
func TestOversizeTokenIsRefusedByName(t *testing.T) {
	srv := startServer(t)
	huge := strings.Repeat("x", 1<<20)
	for name, tr := range transports {
		t.Run(name, func(t *testing.T) {
			c := newJS(t, srv)
			r := c.tryConnect("huge", map[string]any{"token": huge}, tr, map[string]any{"timeoutMs": 15000})
			if r["ok"] == true {
				t.Fatal("connected with a 1 MB token")
			}
			e, _ := r["error"].(map[string]any)
			data, _ := e["data"].(map[string]any)
			if data["code"] != "TOKEN_TOO_LONG" {
				t.Fatalf("connect_error %v, want data.code TOKEN_TOO_LONG", e)
			}
			c.connect("normal", token(alice), tr) // the server is fine
		})
	}
}

// A session is recovered only for the user it was theirs: a socket whose
// token is swapped for another user's while it reconnects (an app that
// keeps the socket across a log-out and log-in) gets a fresh session —
// none of the previous user's rooms, nothing they missed.
func TestRecoveryIsNotHandedToAnotherUser(t *testing.T) {
	srv := startServer(t)
	srv.putRoom(t, "room-swap", alice, carol)
	c := newJS(t, srv)
	first := c.connect("tab", token(alice), map[string]any{"reconnection": true, "transports": []string{"websocket"}})
	c.connect("carol", token(carol))
	for _, n := range []string{"tab", "carol"} {
		wantOK(t, n+" joins", c.emitAck(n, "joinChat", map[string]any{"chatRoomId": "room-swap"}))
	}
	c.call(map[string]any{"op": "setAuth", "name": "tab", "auth": map[string]any{"token": token(bob)}})
	c.call(map[string]any{"op": "dropTransport", "name": "tab"})
	if _, err := c.tryWait("tab", "$disconnect", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	send(t, c, "carol", "room-swap", "for alice's eyes")
	code, _ := srv.api(t, "POST", "/notifications", serviceKey(), map[string]any{
		"userId": alice, "title": "t", "message": "alice's notification", "type": "system"})
	if code != 201 {
		t.Fatalf("POST /notifications: %d", code)
	}
	if r := c.call(map[string]any{"op": "waitReconnect", "name": "tab", "timeoutMs": 10000}); r["ok"] != true {
		t.Fatalf("no reconnection: %v", r["error"])
	}
	if st := c.state("tab"); st["recovered"] == true || st["sid"] == first["sid"] {
		t.Fatalf("bob's token recovered alice's session: %v", st)
	}
	// Marker: a notification to bob arrives; nothing of alice's came before it.
	if code, _ := srv.api(t, "POST", "/notifications", serviceKey(), map[string]any{
		"userId": bob, "title": "t", "message": "bob's marker", "type": "system"}); code != 201 {
		t.Fatalf("POST /notifications: %d", code)
	}
	if n := c.waitEvent("tab", "newNotification").(map[string]any); n["message"] != "bob's marker" {
		t.Fatalf("bob's socket got %v", n)
	}
	send(t, c, "carol", "room-swap", "after the swap")
	if code, _ := srv.api(t, "POST", "/notifications", serviceKey(), map[string]any{
		"userId": bob, "title": "t", "message": "bob's second marker", "type": "system"}); code != 201 {
		t.Fatal("POST /notifications")
	}
	if n := c.waitEvent("tab", "newNotification").(map[string]any); n["message"] != "bob's second marker" {
		t.Fatalf("bob's socket got %v", n)
	}
	if got := c.drain("tab", "newMessage"); len(got) != 0 {
		t.Fatalf("bob's socket got alice's room's messages: %v", got)
	}
}

package test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"
)

// Input limits and malformed input on one server: each is refused with a
// clear error (or the packet is dropped), the socket that sent it keeps
// working where the protocol allows, and the server never goes down.
func TestInputLimits(t *testing.T) {
	srv := startServer(t, "SOCKET_EVENT_BURST=1000", "SOCKET_EVENTS_PER_MINUTE=60000")
	srv.putRoom(t, "room-limits", alice, bob)
	c := newJS(t, srv)
	c.connect("alice", token(alice))
	c.connect("bob", token(bob))
	wantOK(t, "alice joins", c.emitAck("alice", "joinChat", map[string]any{"chatRoomId": "room-limits"}))
	wantOK(t, "bob joins", c.emitAck("bob", "joinChat", map[string]any{"chatRoomId": "room-limits"}))

	long := func(n int) string { return strings.Repeat("가", n) } // one character, three bytes
	msg := func(kv ...any) map[string]any {
		p := map[string]any{"chatRoomId": "room-limits", "message": "hello"}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(p, kv[i].(string))
			} else {
				p[kv[i].(string)] = kv[i+1]
			}
		}
		return p
	}
	refused := []struct {
		name  string
		event string
		args  []any
		code  string
		field string
	}{
		{"message over 4000 characters", "sendMessage", []any{msg("message", long(4001))}, "INVALID_ARGUMENT", "message"},
		{"blank message", "sendMessage", []any{msg("message", "  \n ")}, "INVALID_ARGUMENT", "message"},
		{"missing message", "sendMessage", []any{msg("message", nil)}, "INVALID_ARGUMENT", "message"},
		{"message not a string", "sendMessage", []any{msg("message", 42)}, "INVALID_ARGUMENT", "message"},
		{"message an object", "sendMessage", []any{msg("message", map[string]any{"text": "hi"})}, "INVALID_ARGUMENT", "message"},
		{"missing room", "sendMessage", []any{msg("chatRoomId", nil)}, "INVALID_ARGUMENT", "chatRoomId"},
		{"room not a string", "sendMessage", []any{msg("chatRoomId", 7)}, "INVALID_ARGUMENT", "chatRoomId"},
		{"room id too long", "sendMessage", []any{msg("chatRoomId", strings.Repeat("r", 65))}, "INVALID_ARGUMENT", "chatRoomId"},
		{"room id with a slash", "sendMessage", []any{msg("chatRoomId", "room/../admin")}, "INVALID_ARGUMENT", "chatRoomId"},
		{"room id with a space", "joinChat", []any{map[string]any{"chatRoomId": "room limits"}}, "INVALID_ARGUMENT", "chatRoomId"},
		{"room id with a NUL", "joinChat", []any{map[string]any{"chatRoomId": "room\x00"}}, "INVALID_ARGUMENT", "chatRoomId"},
		{"unknown messageType", "sendMessage", []any{msg("messageType", "video")}, "INVALID_ARGUMENT", "messageType"},
		{"messageType not a string", "sendMessage", []any{msg("messageType", true)}, "INVALID_ARGUMENT", "messageType"},
		{"system message from a user", "sendMessage", []any{msg("messageType", "system")}, "FORBIDDEN", ""},
		{"bad clientMessageId", "sendMessage", []any{msg("clientMessageId", "a/b")}, "INVALID_ARGUMENT", "clientMessageId"},
		{"clientMessageId too long", "sendMessage", []any{msg("clientMessageId", strings.Repeat("c", 65))}, "INVALID_ARGUMENT", "clientMessageId"},
		{"replyTo not an id", "sendMessage", []any{msg("replyTo", "nope")}, "INVALID_ARGUMENT", "replyTo"},
		{"metadata not an object", "sendMessage", []any{msg("metadata", []any{1, 2})}, "INVALID_ARGUMENT", "metadata"},
		{"metadata over 4 KB", "sendMessage", []any{msg("metadata", map[string]any{"x": strings.Repeat("m", 5000)})}, "INVALID_ARGUMENT", "metadata"},
		// Keys MongoDB refuses or misreads, and depth past 16: refused as REST refuses them, not stored.
		{"metadata key starting with $", "sendMessage", []any{msg("metadata", map[string]any{"$where": "1"})}, "INVALID_ARGUMENT", "metadata"},
		{"metadata key with a dot", "sendMessage", []any{msg("metadata", map[string]any{"size.w": 640})}, "INVALID_ARGUMENT", "metadata"},
		{"nested metadata key with $", "sendMessage", []any{msg("metadata", map[string]any{"a": []any{map[string]any{"$set": 1}}})}, "INVALID_ARGUMENT", "metadata"},
		{"metadata 17 levels deep", "sendMessage", []any{msg("metadata", nestedObject(17))}, "INVALID_ARGUMENT", "metadata"},
		{"payload a string", "sendMessage", []any{"room-limits"}, "INVALID_ARGUMENT", ""},
		{"payload an array", "joinChat", []any{[]any{"room-limits"}}, "INVALID_ARGUMENT", ""},
		{"payload a number", "joinChat", []any{12}, "INVALID_ARGUMENT", ""},
		{"no payload", "joinChat", nil, "INVALID_ARGUMENT", "chatRoomId"},
		{"null payload", "sendMessage", []any{nil}, "INVALID_ARGUMENT", "chatRoomId"},
		{"leaveChat without room", "leaveChat", []any{map[string]any{}}, "INVALID_ARGUMENT", "chatRoomId"},
		{"unknown event", "deleteEverything", []any{map[string]any{}}, "NOT_FOUND", ""},
		{"empty event name", "", []any{map[string]any{}}, "NOT_FOUND", ""},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			e := wantCode(t, tc.event, c.emitAck("alice", tc.event, tc.args...), tc.code)
			if tc.field != "" && e["field"] != tc.field {
				t.Errorf("error %v, want field %s", e, tc.field)
			}
		})
	}
	t.Run("error events say the same", func(t *testing.T) {
		// Every refused event (other than unknown ones) also emitted `error` with the code.
		errs := c.drain("alice", "error")
		if len(errs) < len(refused)-2 {
			t.Fatalf("%d error events for %d refused known events", len(errs), len(refused)-2)
		}
		for _, e := range errs {
			m, _ := e.(map[string]any)
			if m["code"] == nil || m["message"] == nil || m["event"] == nil {
				t.Errorf("error event %v lacks code, message or event", m)
			}
		}
	})
	t.Run("nothing refused was delivered", func(t *testing.T) {
		c.noEvent("bob", "newMessage", 200*time.Millisecond)
	})

	t.Run("message of exactly 4000 characters", func(t *testing.T) {
		m := send(t, c, "alice", "room-limits", long(4000))
		if got := len([]rune(m["message"].(string))); got != 4000 {
			t.Fatalf("stored %d characters", got)
		}
		if got := c.waitEvent("bob", "newMessage").(map[string]any); got["_id"] != m["_id"] {
			t.Fatalf("bob got %v", got["_id"])
		}
	})
	t.Run("each messageType", func(t *testing.T) {
		for _, ty := range []string{"text", "image", "file"} {
			m := send(t, c, "alice", "room-limits", "a "+ty, "messageType", ty, "metadata", map[string]any{"w": 640})
			if m["messageType"] != ty {
				t.Errorf("messageType %v, want %s", m["messageType"], ty)
			}
			if got := c.waitEvent("bob", "newMessage").(map[string]any); got["_id"] != m["_id"] || got["messageType"] != ty {
				t.Errorf("bob got %v", got)
			}
		}
	})

	// Binary attachments: no event of the contract carries binary data, and
	// metadata is stored as a JSON-shaped document: a binary is refused by name.
	t.Run("binary in metadata", func(t *testing.T) {
		bin := map[string]any{"$binary": base64.StdEncoding.EncodeToString([]byte("\x89PNG fake image bytes"))}
		e := wantCode(t, "binary metadata", c.emitAck("alice", "sendMessage", msg("metadata", map[string]any{"thumb": bin})), "INVALID_ARGUMENT")
		if e["field"] != "metadata" {
			t.Errorf("error %v, want field metadata", e)
		}
		wantCode(t, "binary message", c.emitAck("alice", "sendMessage", msg("message", bin)), "INVALID_ARGUMENT")
		c.noEvent("bob", "newMessage", 200*time.Millisecond)
	})

	// Raw Socket.IO packets no client library sends. Each is refused or
	// dropped; the server lives, and other sockets never notice.
	t.Run("malformed packets", func(t *testing.T) {
		raw := newJS(t, srv)
		for i, data := range []string{
			`2[]`,                      // event without a name
			`2[""]`,                    // empty event name, no ack
			`2[null,{}]`,               // name not a string
			`2[42,{"chatRoomId":1}]`,   // numeric name
			`2["sendMessage"]`,         // no payload, no ack
			`2["sendMessage","x","y"]`, // extra arguments
			`2["joinChat",{"chatRoomId":{"$gt":""}}]`,
			`2{"not":"an array"}`,                              // invalid payload: the library closes the connection
			`9garbage`,                                         // unknown packet type
			`2["sendMessage",{"chatRoomId":`,                   // truncated JSON
			`51-["sendMessage",{"_placeholder":true,"num":3}]`, // attachment that never comes
		} {
			name := "raw" + string(rune('a'+i))
			raw.connect(name, token(carol))
			raw.call(map[string]any{"op": "emitRaw", "name": name, "data": data})
		}
		// The server is up, and its sockets still work.
		if code, _ := srv.api(t, "GET", "/healthz", nil, nil); code != 200 {
			t.Fatalf("/healthz %d after malformed packets", code)
		}
		m := send(t, c, "alice", "room-limits", "still here")
		if got := c.waitEvent("bob", "newMessage").(map[string]any); got["_id"] != m["_id"] {
			t.Fatalf("bob got %v", got)
		}
		if strings.Contains(srv.Logs(), "panic") {
			t.Fatalf("the server logged a panic:\n%s", tail(srv.Logs(), 50))
		}
	})

	// A payload over the 1 MB Socket.IO limit ends that connection (as the
	// Node server does); the server and everyone else are unaffected.
	t.Run("oversize payload", func(t *testing.T) {
		for name, tr := range transports {
			big := newJS(t, srv)
			big.connect("big", token(carol), tr)
			big.emit("big", "sendMessage", map[string]any{"chatRoomId": "room-limits", "message": strings.Repeat("x", 1_100_000)})
			if _, err := big.tryWait("big", "$disconnect", 10*time.Second); err != nil {
				t.Errorf("%s: a 1.1 MB packet did not end the connection: %v", name, err)
			}
		}
		p := openPolling(t, srv, token(carol))
		if code, body := p.post("4" + strings.Repeat("x", 1_100_000)); code != http.StatusRequestEntityTooLarge {
			t.Errorf("1.1 MB polling POST: %d %q, want 413", code, body)
		}
		m := send(t, c, "alice", "room-limits", "after the big one")
		if got := c.waitEvent("bob", "newMessage").(map[string]any); got["_id"] != m["_id"] {
			t.Fatalf("bob got %v", got)
		}
	})

	// A polling POST body that is not Engine.IO closes the session, as the
	// Node server does (zishang520's transport used to keep it open).
	t.Run("malformed polling POST closes the session", func(t *testing.T) {
		for _, body := range []string{"x", "4hello\x1e", "", "\x1e\x1e"} {
			p := openPolling(t, srv, token(carol))
			p.post(body)
			if closed, seen := p.closedSession(5 * time.Second); !closed {
				t.Errorf("POST %q: session still open; polls answered %s", body, seen)
			}
		}
		// A well-formed POST keeps the session.
		p := openPolling(t, srv, token(carol))
		if code, body := p.post(`421["leaveChat",{"chatRoomId":"room-limits"}]`); code != 200 || body != "ok" {
			t.Fatalf("valid POST: %d %q", code, body)
		}
		eventually(t, 5*time.Second, func() error {
			code, body := p.get(5 * time.Second)
			if code != 200 {
				t.Fatalf("after a valid POST: %d %q", code, body)
			}
			if !strings.Contains(body, `431[{"chatRoomId":"room-limits","ok":true}]`) {
				return errNotYet
			}
			return nil
		})
	})
}

// The per-user event rate: events past the burst are refused with
// RATE_LIMITED (and an error event), the socket stays connected, and the
// bucket refills.
func TestRateLimit(t *testing.T) {
	// One a second: slow enough that 15 events in a row exceed the burst
	// however slowly this machine answers them.
	srv := startServer(t, "SOCKET_EVENT_BURST=5", "SOCKET_EVENTS_PER_MINUTE=60")
	srv.putRoom(t, "room-rate", alice)
	c := newJS(t, srv)
	c.connect("alice", token(alice))
	c.connect("other", token(alice))
	limited := 0
	for i := 0; i < 15; i++ {
		ack := c.emitAck("alice", "leaveChat", map[string]any{"chatRoomId": "room-rate"})
		if e := ackError(ack); e != nil {
			if e["code"] != "RATE_LIMITED" {
				t.Fatalf("event %d: %v", i, e)
			}
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("15 events at once with a burst of 5: none was refused")
	}
	if e, _ := c.waitEvent("alice", "error").(map[string]any); e["code"] != "RATE_LIMITED" {
		t.Errorf("error event %v", e)
	}
	if st := c.state("alice"); st["connected"] != true {
		t.Fatalf("rate-limited socket was disconnected: %v", st)
	}
	// The budget is the user's: another socket of the same user shares it.
	if e := ackError(c.emitAck("other", "joinChat", map[string]any{"chatRoomId": "room-rate"})); e == nil || e["code"] != "RATE_LIMITED" {
		t.Fatalf("another socket of the same user: %v, want RATE_LIMITED", e)
	}
	// Unknown events cost an answer too: they count against the budget.
	c.connect("ghost", token(bob))
	codes := map[any]int{}
	for i := 0; i < 15; i++ {
		codes[ackError(c.emitAck("ghost", "noSuchEvent", map[string]any{}))["code"]]++
	}
	if codes["RATE_LIMITED"] == 0 || codes["NOT_FOUND"] == 0 || codes["NOT_FOUND"]+codes["RATE_LIMITED"] != 15 {
		t.Errorf("15 unknown events with a burst of 5 answered %v", codes)
	}
	// One a second: the bucket refills.
	eventually(t, 5*time.Second, func() error {
		if e := ackError(c.emitAck("alice", "joinChat", map[string]any{"chatRoomId": "room-rate"})); e != nil {
			return errNotYet
		}
		return nil
	})
}

// A socket that keeps flooding long after being refused is closed at the
// transport level, after its last RATE_LIMITED error event was flushed, so
// a well-behaved client would reconnect (to the same budget). Other users'
// sockets are unaffected.
func TestFloodingSocketIsClosed(t *testing.T) {
	srv := startServer(t, "SOCKET_EVENT_BURST=2", "SOCKET_EVENTS_PER_MINUTE=60")
	c := newJS(t, srv)
	c.connect("flood", token(carol))
	c.connect("calm", token(bob))
	for i := 0; i < 200; i++ { // max(10*burst, 100) refusals in a row are abuse
		c.emit("flood", "leaveChat", map[string]any{"chatRoomId": "room-x"})
	}
	reason, err := c.tryWait("flood", "$disconnect", 10*time.Second)
	if err != nil {
		t.Fatalf("the flooding socket was not closed: %v", err)
	}
	if reason[0] != "transport close" {
		t.Errorf("disconnect reason %v, want transport close", reason[0])
	}
	errs := c.drain("flood", "error")
	if len(errs) == 0 {
		t.Fatal("no error event before the close")
	}
	if last, _ := errs[len(errs)-1].(map[string]any); last["code"] != "RATE_LIMITED" {
		t.Errorf("last error event %v", last)
	}
	wantOK(t, "calm socket", c.emitAck("calm", "leaveChat", map[string]any{"chatRoomId": "room-x"}))
}

// nestedObject returns a JSON object nesting depth levels: {"k": {"k": ... {}}}.
func nestedObject(depth int) map[string]any {
	var m map[string]any
	if err := json.Unmarshal([]byte(strings.Repeat(`{"k":`, depth-1)+"{}"+strings.Repeat("}", depth-1)), &m); err != nil {
		panic(err)
	}
	return m
}

// TestFloodWithReconnectsStaysWithinRate floods over raw WebSocket and
// reconnects each time the server closes the socket, as a hostile client
// would (socket.io-client reconnects by itself too). The budget is the
// user's, kept across reconnects: over the whole run the server accepts no
// more than the burst plus the rate times the time taken, and it logs the
// closes a few lines at a time, not one line per refused event.
func TestFloodWithReconnectsStaysWithinRate(t *testing.T) {
	const burst, perMinute = 5, 60
	srv := startServer(t, fmt.Sprintf("SOCKET_EVENT_BURST=%d", burst), fmt.Sprintf("SOCKET_EVENTS_PER_MINUTE=%d", perMinute))
	u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	start := time.Now()
	accepted, closes := 0, 0
	for time.Since(start) < 6*time.Second {
		c, _, err := ws.DefaultDialer.Dial(u, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := c.ReadMessage(); err != nil { // OPEN
			t.Fatal(err)
		}
		_ = c.WriteMessage(ws.TextMessage, []byte(`40{"token":"`+token(carol)+`"}`))
		if _, m, err := c.ReadMessage(); err != nil || !strings.HasPrefix(string(m), "40{") {
			t.Fatalf("CONNECT answer %q: %v", m, err)
		}
		for i := 0; i < 300; i++ {
			if c.WriteMessage(ws.TextMessage, []byte(fmt.Sprintf(`42%d["leaveChat",{"chatRoomId":"room-flood"}]`, i))) != nil {
				break
			}
		}
		for {
			_, m, err := c.ReadMessage()
			if err != nil {
				if isTimeout(err) {
					t.Fatal("the flooding socket was not closed")
				}
				closes++
				break
			}
			if strings.HasPrefix(string(m), "43") && strings.Contains(string(m), `"ok":true`) {
				accepted++
			}
		}
		c.Close()
	}
	elapsed := time.Since(start)
	if allowed := burst + int(elapsed.Seconds()*perMinute/60) + 1; accepted > allowed {
		t.Fatalf("%d events accepted in %v over %d reconnects; the budget allows %d", accepted, elapsed, closes, allowed)
	}
	if closes < 2 {
		t.Fatalf("only %d closes: the test did not reconnect", closes)
	}
	if n := strings.Count(srv.Logs(), "socket closed for flooding"); n < 1 || n > 2 {
		t.Fatalf("%d log lines for %d closes in %v, want 1 or 2 (one per 10 s)", n, closes, elapsed)
	}
}

package test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The outbox end to end: whatever the store ends up holding, the room hears
// once; and a sender hears within STORE_TIMEOUT of sending, whatever the
// store does.

// tally counts the newMessage events each socket got, by message _id.
type tally map[string]map[string]int

// drain adds name's unread newMessage events and returns the texts among them.
func (tl tally) drain(c *js, name string) []string {
	if tl[name] == nil {
		tl[name] = map[string]int{}
	}
	var texts []string
	for _, m := range c.drain(name, "newMessage") {
		if mm, ok := m.(map[string]any); ok {
			tl[name][mm["_id"].(string)]++
			texts = append(texts, mm["message"].(string))
		}
	}
	return texts
}

// waitText drains name's newMessage events until one with this text came.
func (tl tally) waitText(t testing.TB, c *js, name, text string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, got := range tl.drain(c, name) {
			if got == text {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: no newMessage %q within %v", name, text, timeout)
}

// storedIDs lists the _ids of a room's messages in the store.
func storedIDs(t testing.TB, uri, room string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, d := range findAll(t, mongoDB(t, uri, "fitmate"), "chatmessages", bson.M{"chatRoomId": room}) {
		out[d["_id"].(bson.ObjectID).Hex()] = true
	}
	return out
}

// outboxSettled waits until no message is waiting for the sweeper: every
// entry left is one whose message a sweep found absent (it is dropped later).
func outboxSettled(t testing.TB, uri string) {
	t.Helper()
	db := mongoDB(t, uri, "fitmate")
	eventually(t, 60*time.Second, func() error {
		if n := countDocs(t, db, "chatoutbox", bson.M{"missingSince": bson.M{"$exists": false}}); n > 0 {
			return fmt.Errorf("%d outbox entries not yet swept", n)
		}
		return nil
	})
}

// deliveredOnce sends a marker after the outbox settled, waits for it on
// every receiver, and checks that each receiver got every stored message of
// the room exactly once and nothing that is not stored (tl holds what the
// test already took from their inboxes).
func deliveredOnce(t testing.TB, c *js, tl tally, uri, room, sender string, receivers ...string) map[string]bool {
	t.Helper()
	outboxSettled(t, uri)
	send(t, c, sender, room, "marker")
	stored := storedIDs(t, uri, room)
	for _, r := range receivers {
		tl.waitText(t, c, r, "marker", 20*time.Second)
		for id := range stored {
			if tl[r][id] != 1 {
				t.Errorf("%s got stored message %s %d times, want once", r, id, tl[r][id])
			}
		}
		for id, n := range tl[r] {
			if !stored[id] {
				t.Errorf("%s got message %s (%d times), which is not stored", r, id, n)
			}
		}
	}
	return stored
}

// A store that stops answering (SIGSTOP) while members send: every sender
// hears within STORE_TIMEOUT + 0.5 s, and once the store goes on (SIGCONT),
// every message it ended up storing, before, during or after the freeze,
// reaches every member exactly once.
func TestFrozenStoreAnswersInTimeAndDeliversEveryStoredMessageOnce(t *testing.T) {
	ds := startDevStore(t)
	const storeTimeout = time.Second
	srv := startServer(t, "MONGODB_URI="+ds.URI+"fitmate", "STORE_TIMEOUT="+storeTimeout.String(),
		"SOCKET_EVENTS_PER_MINUTE=100000", "SOCKET_EVENT_BURST=1000", "LOG_LEVEL=info")
	srv.putRoom(t, "frozen", alice, bob, carol)
	c := newJS(t, srv)
	for _, n := range []string{"alice", "bob", "carol"} {
		c.connect(n, token(map[string]string{"alice": alice, "bob": bob, "carol": carol}[n]))
		wantOK(t, n+" joins", c.emitAck(n, "joinChat", map[string]any{"chatRoomId": "frozen"}))
	}
	send(t, c, "alice", "frozen", "before the freeze")

	// Two senders keep sending, a few in flight each, so that the freeze
	// catches batches at every step: queued, outbox written, inserted.
	type result struct {
		took time.Duration
		ack  map[string]any
	}
	var mu sync.Mutex
	var results []result
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, sender := range []string{"alice", "carol"} {
		for lane := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					start := time.Now()
					r := c.call(map[string]any{"op": "emit", "name": sender, "event": "sendMessage", "ack": true, "timeoutMs": 10000,
						"args": []any{map[string]any{"chatRoomId": "frozen", "message": fmt.Sprintf("%s-%d-%d", sender, lane, i)}}})
					ack, _ := r["ack"].(map[string]any)
					if r["ok"] != true {
						ack = map[string]any{"driver": r["error"]}
					}
					mu.Lock()
					results = append(results, result{time.Since(start), ack})
					mu.Unlock()
				}
			}()
		}
	}
	time.Sleep(300 * time.Millisecond)
	ds.Freeze()
	frozenAt := time.Now()
	start := time.Now()
	if code, body := srv.api(t, "GET", "/readyz", nil, nil); code != 503 || time.Since(start) > time.Second {
		t.Errorf("/readyz with the store frozen: %d %v after %v, want 503 within a second", code, body, time.Since(start))
	}
	time.Sleep(2*storeTimeout + 500*time.Millisecond - time.Since(frozenAt))
	ds.Thaw()
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()

	refused := 0
	for _, r := range results {
		if r.took > storeTimeout+500*time.Millisecond {
			t.Errorf("a send was answered after %v (%v), want at most STORE_TIMEOUT + 0.5 s", r.took, r.ack)
		}
		if r.ack["ok"] != true {
			refused++
			if e := ackError(r.ack); e["code"] != "STORAGE_UNAVAILABLE" && e["code"] != "SERVICE_UNAVAILABLE" {
				t.Errorf("send refused with %v, want STORAGE_UNAVAILABLE", r.ack)
			}
		}
	}
	if refused == 0 {
		t.Fatalf("no send was refused during the freeze (%d sends): the store did not freeze", len(results))
	}
	stored := deliveredOnce(t, c, tally{}, ds.URI, "frozen", "alice", "bob", "alice", "carol")
	t.Logf("%d sends, %d refused; %d messages stored", len(results), refused, len(stored))
}

// The store stores a message but answers after the deadline: its sender
// hears STORAGE_UNAVAILABLE in time, the room gets the message once, a
// little later, and the sender's retry with the same clientMessageId returns
// it without a second delivery. (A failpoint build delays the store's answer.)
func TestLateStoreAnswerIsDeliveredOnceLater(t *testing.T) {
	ds := startDevStore(t)
	bin := buildOnce(t, "../cmd/commserver", "failpoint")
	srv := startServerBinary(t, bin, "MONGODB_URI="+ds.URI+"fitmate", "STORE_TIMEOUT=1s",
		"FAILPOINT_ANSWER_LATE=answered late")
	srv.putRoom(t, "late", alice, bob)
	c := newJS(t, srv)
	c.connect("alice", token(alice))
	c.connect("bob", token(bob))
	for _, n := range []string{"alice", "bob"} {
		wantOK(t, n+" joins", c.emitAck(n, "joinChat", map[string]any{"chatRoomId": "late"}))
	}
	start := time.Now()
	ack := c.emitAck("alice", "sendMessage", map[string]any{"chatRoomId": "late", "message": "answered late", "clientMessageId": "late-1"})
	wantCode(t, "the late send", ack, "STORAGE_UNAVAILABLE")
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("answered after %v, want at most STORE_TIMEOUT + 0.5 s", took)
	}
	tl := tally{}
	tl.waitText(t, c, "bob", "answered late", 15*time.Second)
	retry := send(t, c, "alice", "late", "answered late", "clientMessageId", "late-1")
	if tl["bob"][retry["_id"].(string)] != 1 {
		t.Errorf("the retry returned %v, not the message bob got", retry["_id"])
	}
	deliveredOnce(t, c, tl, ds.URI, "late", "alice", "bob", "alice")
}

// The server dies (kill -9) after storing a message and before publishing
// it. After the restart the room gets it, once. (A failpoint build kills the
// process at that moment.)
func TestKilledBetweenWriteAndBroadcastDeliversOnceAfterRestart(t *testing.T) {
	ds := startDevStore(t)
	bin := buildOnce(t, "../cmd/commserver", "failpoint")
	srv := startServerBinary(t, bin, "MONGODB_URI="+ds.URI+"fitmate", "STORE_TIMEOUT=2s",
		"FAILPOINT_KILL_BEFORE_PUBLISH=crash here")
	srv.putRoom(t, "crash", alice, bob)
	c := newJS(t, srv)
	for _, n := range []string{"alice", "bob"} {
		c.connect(n, token(map[string]string{"alice": alice, "bob": bob}[n]), map[string]any{"reconnection": true})
		wantOK(t, n+" joins", c.emitAck(n, "joinChat", map[string]any{"chatRoomId": "crash"}))
	}
	send(t, c, "alice", "crash", "before the crash")
	outboxSettled(t, ds.URI) // its entry is gone: the crash below is about the next message only
	c.emit("alice", "sendMessage", map[string]any{"chatRoomId": "crash", "message": "crash here"})
	select {
	case <-srv.exited:
	case <-time.After(15 * time.Second):
		t.Fatal("the failpoint did not kill the server")
	}
	srv.cmd = nil
	if len(storedIDs(t, ds.URI, "crash")) != 2 {
		t.Fatal("the message that killed the server is not stored")
	}
	env := srv.env[:0:0]
	for _, e := range srv.env {
		if !strings.HasPrefix(e, "FAILPOINT_") {
			env = append(env, e)
		}
	}
	srv.env = env // the restarted server publishes the message instead of dying again
	srv.startOn(srv.port)
	for _, n := range []string{"alice", "bob"} {
		if r := c.call(map[string]any{"op": "waitReconnect", "name": n, "timeoutMs": 20000}); r["ok"] != true {
			t.Fatalf("%s did not reconnect: %v", n, r)
		}
		wantOK(t, n+" joins again", c.emitAck(n, "joinChat", map[string]any{"chatRoomId": "crash"}))
	}
	tl := tally{}
	tl.waitText(t, c, "bob", "crash here", 20*time.Second)
	deliveredOnce(t, c, tl, ds.URI, "crash", "alice", "bob", "alice")
}

// The same crash on the embedded store (the default: no MONGODB_URI), whose
// outbox is kept in memory with a watermark in the store: after the restart
// on the same DATA_DIR the room gets the message, once.
func TestKilledBetweenWriteAndBroadcastOnTheEmbeddedStore(t *testing.T) {
	bin := buildOnce(t, "../cmd/commserver", "failpoint")
	srv := startServerBinary(t, bin, "STORE_TIMEOUT=2s", "FAILPOINT_KILL_BEFORE_PUBLISH=crash here")
	srv.putRoom(t, "crash", alice, bob)
	c := newJS(t, srv)
	for _, n := range []string{"alice", "bob"} {
		c.connect(n, token(map[string]string{"alice": alice, "bob": bob}[n]), map[string]any{"reconnection": true})
		wantOK(t, n+" joins", c.emitAck(n, "joinChat", map[string]any{"chatRoomId": "crash"}))
	}
	send(t, c, "alice", "crash", "before the crash")
	// The store's outbox watermark passes a published message within two
	// seconds (written once a second, a second behind): a crash after that
	// is about the next message only (before it, the message published just
	// before the crash may go out again, which clients dedupe).
	time.Sleep(3 * time.Second)
	c.emit("alice", "sendMessage", map[string]any{"chatRoomId": "crash", "message": "crash here"})
	select {
	case <-srv.exited:
	case <-time.After(15 * time.Second):
		t.Fatal("the failpoint did not kill the server")
	}
	srv.cmd = nil
	env := srv.env[:0:0]
	for _, e := range srv.env {
		if !strings.HasPrefix(e, "FAILPOINT_") {
			env = append(env, e)
		}
	}
	srv.env = env // same DATA_DIR; the restarted server publishes the message instead of dying again
	srv.startOn(srv.port)
	for _, n := range []string{"alice", "bob"} {
		if r := c.call(map[string]any{"op": "waitReconnect", "name": n, "timeoutMs": 20000}); r["ok"] != true {
			t.Fatalf("%s did not reconnect: %v", n, r)
		}
		wantOK(t, n+" joins again", c.emitAck(n, "joinChat", map[string]any{"chatRoomId": "crash"}))
	}
	tl := tally{}
	tl.waitText(t, c, "bob", "crash here", 20*time.Second)
	// A marker after it; then every stored message of the room reached each
	// member once (the one before the crash live, the other after it).
	send(t, c, "alice", "crash", "marker")
	code, body := srv.api(t, "GET", "/chat/rooms/crash/messages?page=1&limit=100", bearerOf(alice), nil)
	if code != 200 {
		t.Fatalf("history: %d %v", code, body)
	}
	stored := map[string]bool{}
	for _, m := range messagesOf(t, body) {
		stored[m["_id"].(string)] = true
	}
	if len(stored) != 3 {
		t.Fatalf("%d messages stored, want 3", len(stored))
	}
	for _, r := range []string{"alice", "bob"} {
		tl.waitText(t, c, r, "marker", 20*time.Second)
		for id := range stored {
			if tl[r][id] != 1 {
				t.Errorf("%s got stored message %s %d times, want once", r, id, tl[r][id])
			}
		}
	}
}

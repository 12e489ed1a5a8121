package test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fitmate/commserver/internal/stickyproxy"
)

// Several pods on one Redis and one store, with the real socket.io-client:
// what a member on one pod does reaches the members on the others, once.

// on connects to pod instead of the driver's default server.
func on(pod *server, opts ...map[string]any) map[string]any {
	o := map[string]any{"url": pod.URL}
	for _, m := range opts {
		for k, v := range m {
			o[k] = v
		}
	}
	return o
}

// Members on different pods chat: each gets every message once, in the
// order it was sent, both ways.
func TestChatAcrossPods(t *testing.T) {
	pods, _, _ := clusterPods(t, 2)
	pods[0].putRoom(t, "xp-room", alice, bob)
	c := newJS(t, pods[0])
	c.connect("alice", token(alice), on(pods[0]))
	c.connect("bob", token(bob), on(pods[1]))
	for _, n := range []string{"alice", "bob"} {
		wantOK(t, n+" joins", c.emitAck(n, "joinChat", map[string]any{"chatRoomId": "xp-room"}))
	}
	for _, dir := range [][2]string{{"alice", "bob"}, {"bob", "alice"}} {
		from, to := dir[0], dir[1]
		var sent []string
		for i := range 10 {
			sent = append(sent, send(t, c, from, "xp-room", fmt.Sprintf("%s %d", from, i))["_id"].(string))
		}
		marker := send(t, c, from, "xp-room", "marker from "+from)["_id"].(string)
		for _, want := range append(sent, marker) {
			m := c.waitEvent(to, "newMessage").(map[string]any)
			if m["_id"] != want {
				t.Fatalf("%s got %v (%v), want %s: lost, doubled or out of order", to, m["_id"], m["message"], want)
			}
		}
		// The sender's own broadcast comes back to it once too.
		for _, want := range append(sent, marker) {
			if m := c.waitEvent(from, "newMessage").(map[string]any); m["_id"] != want {
				t.Fatalf("%s's own message %v, want %s", from, m["_id"], want)
			}
		}
		if extra := c.drain(to, "newMessage"); len(extra) != 0 {
			t.Fatalf("%s got %d more after the marker", to, len(extra))
		}
	}
}

// POST /notifications on pod 2 reaches every tab of the user on pod 1, once
// each; the unread count follows.
func TestNotificationAcrossPods(t *testing.T) {
	pods, _, _ := clusterPods(t, 2)
	c := newJS(t, pods[0])
	for _, tab := range []string{"tab1", "tab2"} {
		c.connect(tab, token(alice), on(pods[0]))
		c.waitEvent(tab, "unreadNotificationCount")
	}
	for _, msg := range []string{"first", "marker"} {
		code, body := pods[1].api(t, "POST", "/notifications", serviceKey(), map[string]any{
			"userId": alice, "title": "t", "message": msg, "type": "system"})
		if code != 201 {
			t.Fatalf("POST /notifications on pod 2: %d %v", code, body)
		}
	}
	for _, tab := range []string{"tab1", "tab2"} {
		for _, want := range []string{"first", "marker"} {
			n := c.waitEvent(tab, "newNotification").(map[string]any)
			if n["message"] != want || n["userId"] != alice {
				t.Fatalf("%s got %v, want %q", tab, n, want)
			}
		}
		if extra := c.drain(tab, "newNotification"); len(extra) != 0 {
			t.Fatalf("%s got %v more", tab, extra)
		}
	}
}

// userOnline goes out once when a user's first socket anywhere connects,
// not again when a page reload moves them to another pod, and userOffline
// once after their last socket anywhere.
func TestPresenceAcrossPods(t *testing.T) {
	pods, _, _ := clusterPods(t, 2, "PRESENCE_GRACE=3s")
	pods[0].putRoom(t, "xp-presence", alice, bob, carol)
	c := newJS(t, pods[0])
	c.connect("bob", token(bob), on(pods[0]))
	wantOK(t, "bob joins", c.emitAck("bob", "joinChat", map[string]any{"chatRoomId": "xp-presence"}))

	c.connect("alice", token(alice), on(pods[1]))
	if p := c.waitEvent("bob", "userOnline").(map[string]any); p["userId"] != alice {
		t.Fatalf("bob got userOnline %v", p)
	}
	// A reload: the socket goes and a new one comes, on the other pod.
	c.close("alice")
	c.connect("alice2", token(alice), on(pods[0]))
	// Marker: carol comes online; nothing about alice may come before her.
	c.connect("carol", token(carol), on(pods[1]))
	if p := c.waitEvent("bob", "userOnline").(map[string]any); p["userId"] != carol {
		t.Fatalf("after alice's reload bob got userOnline %v, want carol's", p)
	}
	if off := c.drain("bob", "userOffline"); len(off) != 0 {
		t.Fatalf("the reload flapped: userOffline %v", off)
	}
	c.close("alice2")
	if p := c.waitEvent("bob", "userOffline", 15*time.Second).(map[string]any); p["userId"] != alice {
		t.Fatalf("bob got userOffline %v", p)
	}
	c.close("carol")
	if p := c.waitEvent("bob", "userOffline", 15*time.Second).(map[string]any); p["userId"] != carol {
		t.Fatalf("bob got userOffline %v, want carol's (alice's twice?)", p)
	}
}

// PUT /chat/rooms on pod 2 that removes a member connected to pod 1 makes
// that member's sockets leave the room at once, and refuses their sends.
func TestRoomChangeEvictsAcrossPods(t *testing.T) {
	pods, _, _ := clusterPods(t, 2)
	pods[0].putRoom(t, "xp-evict", alice, bob)
	pods[0].putRoom(t, "xp-marker", alice, bob)
	c := newJS(t, pods[0])
	c.connect("bob", token(bob), on(pods[0]))
	c.connect("alice", token(alice), on(pods[1]))
	for _, n := range []string{"alice", "bob"} {
		for _, room := range []string{"xp-evict", "xp-marker"} {
			wantOK(t, n+" joins "+room, c.emitAck(n, "joinChat", map[string]any{"chatRoomId": room}))
		}
	}
	first := send(t, c, "alice", "xp-evict", "before")
	if m := c.waitEvent("bob", "newMessage").(map[string]any); m["_id"] != first["_id"] {
		t.Fatalf("bob got %v", m)
	}
	pods[1].putRoom(t, "xp-evict", alice) // bob removed, through pod 2
	send(t, c, "alice", "xp-evict", "after the eviction")
	marker := send(t, c, "alice", "xp-marker", "marker")
	if m := c.waitEvent("bob", "newMessage").(map[string]any); m["_id"] != marker["_id"] {
		t.Fatalf("bob, evicted, got %v (%v) before the marker", m["_id"], m["message"])
	}
	wantCode(t, "bob's send after the eviction", c.emitAck("bob", "sendMessage",
		map[string]any{"chatRoomId": "xp-evict", "message": "still here?"}), "FORBIDDEN")
}

// A pod killed with SIGKILL: its client reconnects through the proxy to the
// other pod, recovers its session there (same socket id, still in the
// room) with what it missed, once each, and misses nothing persisted.
func TestPodKilledClientsRecoverOnTheOther(t *testing.T) {
	pods, front, rdb, prefix := twoPods(t, stickyproxy.SessionID)
	pods[0].putRoom(t, "xp-kill", alice, bob)
	c := newJS(t, &server{URL: front})
	first := c.connect("alice", token(alice), map[string]any{"reconnection": true, "transports": []string{"websocket"}})
	wantOK(t, "alice joins", c.emitAck("alice", "joinChat", map[string]any{"chatRoomId": "xp-kill"}))
	home, other := podServing(t, pods)
	c.connect("bob", token(bob), on(other))
	wantOK(t, "bob joins", c.emitAck("bob", "joinChat", map[string]any{"chatRoomId": "xp-kill"}))
	before := send(t, c, "bob", "xp-kill", "before the kill")
	if m := c.waitEvent("alice", "newMessage").(map[string]any); m["_id"] != before["_id"] {
		t.Fatalf("alice got %v", m)
	}

	// The pod keeps alice's live session in Redis (a moment after she
	// joined): what another pod restores once this one is gone.
	ctx := context.Background()
	eventually(t, 5*time.Second, func() error {
		keys := rdb.Keys(ctx, prefix+"{sio:v1}:session:/:*").Val()
		for _, k := range keys {
			if v := rdb.Get(ctx, k).Val(); strings.Contains(v, first["sid"].(string)) && strings.Contains(v, "chat:xp-kill") {
				return nil
			}
		}
		return fmt.Errorf("no live session of alice's socket in the room among %d", len(keys))
	})
	home.Kill()
	if _, err := c.tryWait("alice", "$disconnect", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	var missed []string
	for i := range 3 {
		missed = append(missed, send(t, c, "bob", "xp-kill", fmt.Sprintf("missed %d", i))["_id"].(string))
	}
	if r := c.call(map[string]any{"op": "waitReconnect", "name": "alice", "timeoutMs": 20000}); r["ok"] != true {
		t.Fatalf("alice did not reconnect: %v", r["error"])
	}
	if st := c.state("alice"); st["recovered"] != true || st["sid"] != first["sid"] {
		t.Fatalf("not recovered on the other pod: %v (first sid %v)", st, first["sid"])
	}
	for _, id := range missed {
		if m := c.waitEvent("alice", "newMessage").(map[string]any); m["_id"] != id {
			t.Fatalf("alice got %v (%v), want missed %s", m["_id"], m["message"], id)
		}
	}
	// Once the dead pod is reaped, alice is still online: her recovered
	// socket id is the live pod's now.
	eventually(t, 20*time.Second, func() error {
		if n := rdb.ZCard(ctx, prefix+"{presence:v1}:pods").Val(); n != 1 {
			return fmt.Errorf("%d pods hold a lease, want the survivor only", n)
		}
		return nil
	})
	if pod := rdb.HGet(ctx, prefix+"{presence:v1}:user:"+alice, first["sid"].(string)).Val(); pod == "" ||
		!rdb.SIsMember(ctx, prefix+"{presence:v1}:online", alice).Val() {
		t.Fatalf("alice's recovered socket is not online after the dead pod was reaped (held by %q)", pod)
	}
	if off := c.drain("bob", "userOffline"); len(off) != 0 {
		t.Fatalf("bob was told %v", off)
	}
	after := send(t, c, "bob", "xp-kill", "after")
	if m := c.waitEvent("alice", "newMessage").(map[string]any); m["_id"] != after["_id"] {
		t.Fatalf("after the recovery alice got %v, want %v", m["_id"], after["_id"])
	}
	// Nothing persisted is missed: the history holds them all.
	c.drain("alice", "chatHistory")
	wantOK(t, "alice rejoins", c.emitAck("alice", "joinChat", map[string]any{"chatRoomId": "xp-kill"}))
	got := strings.Join(texts(c.waitEvent("alice", "chatHistory").([]any)), "|")
	for _, want := range []string{"before the kill", "missed 0", "missed 1", "missed 2", "after"} {
		if !strings.Contains(got, want) {
			t.Fatalf("history lacks %q: %s", want, got)
		}
	}
}

// podServing returns the pod that holds the one socket connected through
// the proxy so far, and the other.
func podServing(t *testing.T, pods []*server) (home, other *server) {
	t.Helper()
	var found *server
	eventually(t, 5*time.Second, func() error {
		for i, p := range pods {
			if metric(t, p, "commserver_sockets_connected") == 1 {
				found = p
				other = pods[1-i]
				return nil
			}
		}
		return fmt.Errorf("no pod reports the socket")
	})
	return found, other
}

// metric reads one unlabelled gauge or counter from a pod's /metrics.
func metric(t *testing.T, p *server, name string) float64 {
	t.Helper()
	r := p.do(t, "GET", "/metrics", nil, nil)
	for _, l := range strings.Split(string(r.raw), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return -1
}

// Redis stopped for a few seconds and started again (empty): no pod
// crashes, delivery on a pod goes on meanwhile, /readyz says what is
// degraded, a message sent during the outage reaches the other pod once
// Redis is back, and everything resumes; nothing persisted is lost.
func TestRedisOutageAcrossPods(t *testing.T) {
	port := freePort(t)
	stopRedis := startRedis(t, port)
	url := fmt.Sprintf("redis://127.0.0.1:%d", port)
	pods, _, _ := clusterPods(t, 2, "REDIS_URL="+url, "CLUSTER_REDIS_TIMEOUT=300ms")
	pods[0].putRoom(t, "xp-outage", alice, bob, carol)
	c := newJS(t, pods[0])
	c.connect("alice", token(alice), on(pods[0]))
	c.connect("carol", token(carol), on(pods[0]))
	c.connect("bob", token(bob), on(pods[1]))
	for _, n := range []string{"alice", "bob", "carol"} {
		wantOK(t, n+" joins", c.emitAck(n, "joinChat", map[string]any{"chatRoomId": "xp-outage"}))
	}
	warm := send(t, c, "alice", "xp-outage", "before the outage")
	for _, n := range []string{"bob", "carol"} {
		if m := c.waitEvent(n, "newMessage").(map[string]any); m["_id"] != warm["_id"] {
			t.Fatalf("%s got %v", n, m)
		}
	}

	stopRedis()
	eventually(t, 10*time.Second, func() error {
		code, body := pods[0].api(t, "GET", "/readyz", nil, nil)
		d, _ := body["degraded"].(map[string]any)
		if code != 200 || body["status"] != "degraded" || d["adapter"] == nil || d["presence"] == nil {
			return fmt.Errorf("/readyz during the outage: %d %v", code, body)
		}
		return nil
	})
	during := send(t, c, "alice", "xp-outage", "during the outage")
	if m := c.waitEvent("carol", "newMessage").(map[string]any); m["_id"] != during["_id"] {
		t.Fatalf("local delivery stopped: carol got %v", m)
	}

	startRedis(t, port)
	if m := c.waitEvent("bob", "newMessage", 20*time.Second).(map[string]any); m["_id"] != during["_id"] {
		t.Fatalf("bob got %v, want the message sent during the outage", m)
	}
	after := send(t, c, "alice", "xp-outage", "after the outage")
	for _, n := range []string{"bob", "carol"} {
		if m := c.waitEvent(n, "newMessage", 10*time.Second).(map[string]any); m["_id"] != after["_id"] {
			t.Fatalf("%s got %v (%v), want the message after the outage", n, m["_id"], m["message"])
		}
	}
	for _, p := range pods {
		if code, _ := p.api(t, "GET", "/healthz", nil, nil); code != 200 {
			t.Fatalf("a pod is down after the outage: %d\n%s", code, tail(p.Logs(), 30))
		}
	}
	c.drain("bob", "chatHistory")
	wantOK(t, "bob rejoins", c.emitAck("bob", "joinChat", map[string]any{"chatRoomId": "xp-outage"}))
	got := strings.Join(texts(c.waitEvent("bob", "chatHistory").([]any)), "|")
	for _, want := range []string{"before the outage", "during the outage", "after the outage"} {
		if !strings.Contains(got, want) {
			t.Fatalf("history lacks %q: %s", want, got)
		}
	}
}

// startRedis runs a private redis-server (no persistence) on port until
// the returned stop is called or the test ends.
func startRedis(t *testing.T, port int) (stop func()) {
	t.Helper()
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatalf("this test needs redis-server on PATH: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop = func() {
		_ = cmd.Process.Kill()
		<-done
	}
	t.Cleanup(stop)
	eventually(t, 5*time.Second, func() error {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return err
		}
		return conn.Close()
	})
	return stop
}

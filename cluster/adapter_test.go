package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"github.com/redis/go-redis/v9"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fitmate/commserver/cluster"
	"github.com/fitmate/commserver/gateway/socketio"
)

func threePods(t *testing.T, setup func(*socketio.Server)) (a, b, c *sioPod) {
	t.Helper()
	rdb, prefix := testRedis(t)
	a = startPod(t, "pod-a", rdb, prefix, setup)
	b = startPod(t, "pod-b", rdb, prefix, setup)
	c = startPod(t, "pod-c", rdb, prefix, setup)
	waitPods(t, a, b, c)
	return a, b, c
}

func seq(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s:%d", prefix, i)
	}
	return out
}

// only keeps the labels that start with prefix.
func only(got []string, prefix string) []string {
	var out []string
	for _, g := range got {
		if strings.HasPrefix(g, prefix) {
			out = append(out, g)
		}
	}
	return out
}

// Broadcasts from two pods reach every selected socket on every pod exactly
// once, each publisher's in its order; a socket in two selected rooms gets
// each once; Except, everyone and binary attachments work across pods.
func TestAdapterBroadcastAcrossPods(t *testing.T) {
	t.Parallel()
	a, b, c := threePods(t, nil)
	c1 := connectTo(t, a, map[string]any{"rooms": []any{"r1"}})
	c2 := connectTo(t, b, map[string]any{"rooms": []any{"r1", "r2"}})
	c3 := connectTo(t, c, map[string]any{"rooms": []any{"r2"}})
	c4 := connectTo(t, b, map[string]any{})

	const n = 50
	for i := range n {
		if err := a.srv.To("r1").Emit("m", i); err != nil {
			t.Fatal(err)
		}
		if err := c.srv.To("r1", "r2").Emit("n", i); err != nil {
			t.Fatal(err)
		}
	}
	_ = a.srv.To("r1").Except("r2").Emit("x", 1)
	_ = c.srv.To("r1", "r2").Except(c2.sid).Emit("y", 1)
	blob := []byte{0, 1, 2, 0xff, 0xfe, '\n', '"', 0}
	_ = b.srv.Emit("all", map[string]any{"file": blob, "name": "f"})
	for _, p := range []*sioPod{a, b, c} {
		_ = p.srv.Emit("end-" + p.name)
	}

	check := func(cl *sioClient, wantM, wantN, wantX, wantY bool) {
		t.Helper()
		got := cl.untilAll("end-pod-a", "end-pod-b", "end-pod-c")
		var want []string
		if wantM {
			want = seq("m", n)
		}
		if g := only(got, "m:"); !slices.Equal(g, want) {
			t.Errorf("%s: m = %v, want %v", cl.sid, g, want)
		}
		want = nil
		if wantN {
			want = seq("n", n)
		}
		if g := only(got, "n:"); !slices.Equal(g, want) {
			t.Errorf("%s: n = %v, want %v", cl.sid, g, want)
		}
		if g := len(only(got, "x:")); g != map[bool]int{true: 1}[wantX] {
			t.Errorf("%s: got x %d times", cl.sid, g)
		}
		if g := len(only(got, "y:")); g != map[bool]int{true: 1}[wantY] {
			t.Errorf("%s: got y %d times", cl.sid, g)
		}
		if g := len(only(got, "all:")); g != 1 {
			t.Errorf("%s: got all %d times", cl.sid, g)
		}
	}
	check(c1, true, true, true, true)
	check(c2, true, true, false, false)
	check(c3, false, true, false, true)
	check(c4, false, false, false, false)

	// The binary attachment arrives intact (checked on another client).
	c5 := connectTo(t, c, map[string]any{})
	_ = a.srv.Emit("bin", blob, map[string]any{"nested": []any{blob[:3]}})
	ev := c5.next()
	if ev.name != "bin" || !bytes.Equal(ev.args[0].([]byte), blob) ||
		!bytes.Equal(ev.args[1].(map[string]any)["nested"].([]any)[0].([]byte), blob[:3]) {
		t.Fatalf("binary event = %#v", ev)
	}
	if st := a.ads.Stats(); st.Published == 0 || st.Received == 0 || st.Dropped != 0 {
		t.Fatalf("stats = %+v", st)
	}
	if err := a.ads.Health(); err != nil {
		t.Fatal(err)
	}
}

// SocketsJoin, SocketsLeave and DisconnectSockets act on sockets of other
// pods, in stream order with the broadcasts of the same pod.
func TestAdapterRoomOperationsAcrossPods(t *testing.T) {
	t.Parallel()
	a, b, c := threePods(t, nil)
	ua := connectTo(t, a, map[string]any{"rooms": []any{"user:a"}})
	ub := connectTo(t, b, map[string]any{"rooms": []any{"user:b"}})
	other := connectTo(t, c, map[string]any{"rooms": []any{"chat:1"}})

	if err := c.srv.In("user:a", "user:b").SocketsJoin("chat:1"); err != nil {
		t.Fatal(err)
	}
	_ = c.srv.To("chat:1").Emit("msg", 1)
	// The product's eviction: out of the room on every pod, then the next message.
	_ = c.srv.To("chat:1").Emit("msg", 2)
	_ = c.srv.In("user:a", "user:b").SocketsLeave("chat:1")
	_ = c.srv.To("chat:1").Emit("msg", 3)
	_ = c.srv.Emit("end")
	for _, cl := range []*sioClient{ua, ub} {
		if got := cl.until("end"); !slices.Equal(got, []string{"msg:1", "msg:2"}) {
			t.Errorf("%s got %v, want msg:1 msg:2", cl.sid, got)
		}
	}
	if got := other.until("end"); !slices.Equal(got, []string{"msg:1", "msg:2", "msg:3"}) {
		t.Errorf("other got %v", got)
	}

	// Joined on pod a, by pod b: pod a's own broadcast reaches it.
	_ = b.srv.In(ua.sid).SocketsJoin("late")
	waitUntil(t, 5*time.Second, func() bool { return a.srv.Of("/").Adapter().(*cluster.Adapter).Rooms()["late"] == 1 })
	_ = a.srv.To("late").Emit("late", 1)
	if ev := ua.next(); label(ev) != "late:1" {
		t.Fatalf("got %v", label(ev))
	}

	_ = a.srv.In(ub.sid).DisconnectSockets(false)
	if ev := ub.next(); ev.name != "(disconnect)" {
		t.Fatalf("got %v, want a DISCONNECT", label(ev))
	}
	waitUntil(t, 5*time.Second, func() bool { return len(b.srv.Of("/").Sockets()) == 0 })
}

// FetchSockets describes the sockets of every pod; ServerSideEmit runs the
// handlers of every other pod with binary arguments intact.
func TestAdapterFetchSocketsAndServerSideEmit(t *testing.T) {
	t.Parallel()
	type got struct {
		pod  string
		args []any
	}
	heard := make(chan got, 10)
	var mu sync.Mutex
	made := 0
	setup := func(srv *socketio.Server) { // pods are set up in order: a is "0"
		mu.Lock()
		name := fmt.Sprint(made)
		made++
		mu.Unlock()
		srv.Of("/").OnServerSideEvent("hello", func(args []any) { heard <- got{pod: name, args: args} })
	}
	a, b, c := threePods(t, setup)
	connectTo(t, a, map[string]any{"rooms": []any{"r"}, "user": "ua"})
	connectTo(t, b, map[string]any{"rooms": []any{"r"}, "user": "ub"})
	connectTo(t, c, map[string]any{"user": "uc"})
	connectTo(t, c, map[string]any{"rooms": []any{"r"}, "user": "uc2"})

	ctx := context.Background()
	all, err := a.srv.Of("/").FetchSockets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, s := range all {
		users = append(users, s.Data.(map[string]any)["user"].(string))
	}
	sort.Strings(users)
	if !slices.Equal(users, []string{"ua", "ub", "uc", "uc2"}) {
		t.Fatalf("FetchSockets users = %v", users)
	}
	inR, err := b.srv.In("r").FetchSockets(ctx)
	if err != nil || len(inR) != 3 {
		t.Fatalf("FetchSockets(r) = %d sockets, %v", len(inR), err)
	}
	for _, s := range inR {
		if !slices.Contains(s.Rooms, "r") || !slices.Contains(s.Rooms, s.ID) {
			t.Fatalf("rooms of %s = %v", s.ID, s.Rooms)
		}
	}

	blob := []byte{0, 0xff, 1}
	if err := a.srv.Of("/").ServerSideEmit("hello", "x", blob); err != nil {
		t.Fatal(err)
	}
	pods := map[string]bool{}
	for range 2 {
		select {
		case g := <-heard:
			if len(g.args) != 2 || g.args[0] != "x" || !bytes.Equal(g.args[1].([]byte), blob) {
				t.Fatalf("server-side args = %#v", g.args)
			}
			pods[g.pod] = true
		case <-time.After(5 * time.Second):
			t.Fatal("a pod did not hear the server-side event")
		}
	}
	// Pod a (the first set up, "0") must not hear its own; a marker proves nothing more came.
	_ = b.srv.Of("/").ServerSideEmit("hello", "marker")
	for range 2 {
		g := <-heard
		if g.args[0] != "marker" {
			t.Fatalf("a pod heard an extra %v", g)
		}
	}
	if len(pods) != 2 || pods["0"] {
		t.Fatalf("heard on %v, want the two other pods", pods)
	}
}

// BroadcastWithAck counts the sockets of every pod and gathers their answers.
func TestAdapterBroadcastWithAck(t *testing.T) {
	t.Parallel()
	a, b, c := threePods(t, nil)
	var clients []*sioClient
	for i, p := range []*sioPod{a, b, c, b} {
		clients = append(clients, connectTo(t, p, map[string]any{"rooms": []any{"r"}, "user": fmt.Sprint(i)}))
	}
	connectTo(t, c, map[string]any{}) // not selected
	var wg sync.WaitGroup
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := cl.next()
			if ev.name != "q" || !ev.hasID {
				t.Errorf("got %v", label(ev))
				return
			}
			cl.send(fmt.Sprintf(`43%d["answer-%d",%q]`, ev.id, i, ev.args[0]))
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	answers, err := a.srv.To("r").Timeout(5*time.Second).EmitWithAck(ctx, "q", "hi")
	if err != nil {
		t.Fatalf("EmitWithAck: %v (answers %v)", err, answers)
	}
	var got []string
	for _, ans := range answers {
		got = append(got, ans[0].(string))
	}
	sort.Strings(got)
	if !slices.Equal(got, []string{"answer-0", "answer-1", "answer-2", "answer-3"}) {
		t.Fatalf("answers = %v", got)
	}
	wg.Wait()
}

// A client that lost its connection to pod a comes back on pod b within the
// window: same id, its rooms, exactly the broadcasts it missed (from any
// pod), then live ones; none twice. A trimmed offset or an unknown session
// gives a fresh session.
func TestAdapterRecoveryAcrossPods(t *testing.T) {
	t.Parallel()
	rdb, prefix, a, b, cl := recoveryPods(t)
	sessKey := cluster.AdapterBase(prefix) + "session:/:" + cl.pid
	cl.c.Close() // the transport closes: recoverable
	waitUntil(t, 5*time.Second, func() bool { return rdb.Exists(context.Background(), sessKey).Val() == 1 })

	_ = b.srv.To("r").Emit("e", 2)
	_ = a.srv.To("r").Emit("e", 3)
	_ = a.srv.To("other").Emit("e", 99)
	_ = b.srv.Except(cl.sid).Emit("e", 98)
	_ = a.srv.To(cl.sid).Emit("e", 4) // to its id: replayed too
	// Make sure pod b has read them (else they come live: also fine, but this tests the replay).
	stream := cluster.AdapterBase(prefix) + "stream:/"
	waitUntil(t, 5*time.Second, func() bool { return rdb.XLen(context.Background(), stream).Val() >= 6 })

	back := connectTo(t, b, map[string]any{"pid": cl.pid, "offset": cl.offset})
	if back.sid != cl.sid || back.pid != cl.pid {
		t.Fatalf("recovered as %s/%s, want %s/%s", back.sid, back.pid, cl.sid, cl.pid)
	}
	_ = b.srv.To("r").Emit("live", 1)
	_ = a.srv.To("r").Emit("live", 2)
	got := back.untilAll("live")
	sort.Strings(got) // pods a and b publish concurrently; each pod's own order is checked above
	if !slices.Equal(got, []string{"e:2", "e:3", "e:4"}) {
		t.Fatalf("replayed %v, want e:2 e:3 e:4", got)
	}
	if ev := back.next(); label(ev) != "live:2" && label(ev) != "live:1" {
		t.Fatalf("then %v", label(ev))
	}
	// The stored goodbye was taken; what is there now is pod b's live session.
	if raw, err := rdb.Get(context.Background(), sessKey).Result(); err == nil &&
		(!strings.Contains(raw, `"live":true`) || !strings.Contains(raw, `"pod":"pod-b"`)) {
		t.Fatalf("the session is still stored after its restore: %s", raw)
	}

	// Unknown session: fresh.
	fresh := connectTo(t, b, map[string]any{"pid": "nope", "offset": back.offset})
	if fresh.sid == cl.sid || fresh.pid == cl.pid {
		t.Fatal("an unknown pid restored a session")
	}

	// Trimmed past the offset: fresh.
	cl2 := connectTo(t, a, map[string]any{"rooms": []any{"r"}})
	_ = a.srv.To("r").Emit("f", 1)
	if ev := cl2.next(); label(ev) != "f:1" {
		t.Fatalf("got %v", label(ev))
	}
	cl2.c.Close()
	waitUntil(t, 5*time.Second, func() bool {
		return rdb.Exists(context.Background(), cluster.AdapterBase(prefix)+"session:/:"+cl2.pid).Val() == 1
	})
	_ = a.srv.To("r").Emit("f", 2)
	_ = a.srv.Emit("marker")
	if got := back.until("marker"); !slices.Equal(got, []string{"f:1", "f:2"}) {
		t.Fatalf("back got %v", got)
	}
	if err := rdb.XTrimMaxLen(context.Background(), stream, 1).Err(); err != nil {
		t.Fatal(err)
	}
	again := connectTo(t, b, map[string]any{"pid": cl2.pid, "offset": cl2.offset})
	if again.sid == cl2.sid {
		t.Fatal("a session whose offset was trimmed was restored")
	}
}

// A Redis outage: local delivery goes on at once, Health says so, what was
// broadcast is published when Redis is back and reaches the other pod, in
// order, and is not delivered twice where it was delivered at once.
func TestAdapterRedisOutage(t *testing.T) {
	t.Parallel()
	red := newPrivateRedis(t)
	rdbA, err := cluster.NewClient(red.url(), 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	rdbB, _ := cluster.NewClient(red.url(), 300*time.Millisecond)
	t.Cleanup(func() { rdbA.Close(); rdbB.Close() })
	a := startPod(t, "pod-a", rdbA, "t:", nil)
	b := startPod(t, "pod-b", rdbB, "t:", nil)
	waitPods(t, a, b)
	ca := connectTo(t, a, map[string]any{"rooms": []any{"r"}})
	cb := connectTo(t, b, map[string]any{"rooms": []any{"r"}})
	_ = a.srv.To("r").Emit("before", 1)
	for _, cl := range []*sioClient{ca, cb} {
		if ev := cl.next(); label(ev) != "before:1" {
			t.Fatalf("got %v", label(ev))
		}
	}

	red.stop()
	start := time.Now()
	for i := range 5 {
		if err := a.srv.To("r").Emit("during", i); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		if ev := ca.next(); label(ev) != fmt.Sprintf("during:%d", i) {
			t.Fatalf("local delivery during the outage: got %v", label(ev))
		}
	}
	t.Logf("local delivery with Redis down took %v", time.Since(start))
	waitUntil(t, 5*time.Second, func() bool { return a.ads.Health() != nil && b.ads.Health() != nil })
	if st := a.ads.Stats(); st.Queued != 5 || st.Errors == 0 {
		t.Fatalf("stats during the outage = %+v", st)
	}

	red.start()
	waitUntil(t, 10*time.Second, func() bool { return a.ads.Health() == nil && b.ads.Health() == nil })
	_ = a.srv.To("r").Emit("after", 1)
	if got := cb.until("after"); !slices.Equal(got, seq("during", 5)) {
		t.Fatalf("other pod got %v, want the queued broadcasts in order", got)
	}
	if got := ca.until("after"); len(got) != 0 {
		t.Fatalf("this pod delivered again %v", got)
	}
	waitUntil(t, 5*time.Second, func() bool { return a.ads.Stats().Queued == 0 }) // popped once its pipeline returned
	if st := a.ads.Stats(); st.Dropped != 0 || st.Published < 7 {
		t.Fatalf("stats after the outage = %+v", st)
	}
}

// Past the queue's bound, entries are dropped and counted, and delivered
// locally all the same; nothing blocks.
func TestAdapterQueueBound(t *testing.T) {
	t.Parallel()
	rdb := deadRedis(t)
	ads := cluster.NewAdapters(rdb, cluster.AdapterOptions{Prefix: "t:", Pod: "p", QueueLength: 3,
		Timeout: 100 * time.Millisecond, Log: quiet()})
	defer ads.Close()
	srv, err := socketio.NewServer(socketio.Options{Adapter: ads.For})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	start := time.Now()
	for i := range 10 {
		if err := srv.Emit("x", i); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Fatalf("10 broadcasts with Redis down took %v", d)
	}
	st := ads.Stats()
	if st.Queued != 3 || st.Dropped != 7 {
		t.Fatalf("stats = %+v, want 3 queued, 7 dropped", st)
	}
	waitUntil(t, 5*time.Second, func() bool { return ads.Health() != nil })
}

// A pod that dies without a goodbye (no session persisted at disconnect):
// its client recovers on another pod from the live session the dead pod
// kept in Redis. While the pod lives, its connected socket's session
// cannot be taken by another connection: that one gets a fresh session.
func TestAdapterRecoveryAfterAPodDies(t *testing.T) {
	t.Parallel()
	rdb, prefix, a, b, cl := recoveryPods(t)
	sessKey := cluster.AdapterBase(prefix) + "session:/:" + cl.pid
	isLive := func() bool {
		raw, err := rdb.Get(context.Background(), sessKey).Result()
		return err == nil && strings.Contains(raw, `"live":true`) && strings.Contains(raw, `"pod":"pod-a"`) &&
			strings.Contains(raw, `"r"`)
	}
	waitUntil(t, 5*time.Second, isLive)

	// Still connected on pod a: a second connection presenting its session is fresh.
	dup := connectTo(t, b, map[string]any{"pid": cl.pid, "offset": cl.offset})
	if dup.sid == cl.sid || dup.pid == cl.pid {
		t.Fatal("a live socket's session was taken while its pod is alive")
	}
	waitUntil(t, 5*time.Second, isLive) // put back for a later crash

	// Pod a dies: no disconnect handling reaches Redis.
	_ = a.ads.Close()
	cl.c.Close()
	_ = b.srv.To("r").Emit("e", 2)
	_ = b.srv.To("elsewhere").Emit("e", 99)
	back := connectTo(t, b, map[string]any{"pid": cl.pid, "offset": cl.offset})
	if back.sid != cl.sid || back.pid != cl.pid {
		t.Fatalf("recovered as %s/%s, want %s/%s", back.sid, back.pid, cl.sid, cl.pid)
	}
	_ = b.srv.To("r").Emit("live", 1)
	if got := back.untilAll("live"); !slices.Equal(got, []string{"e:2"}) {
		t.Fatalf("replayed %v, want e:2", got)
	}
}

// Live sessions follow their sockets: one per connected socket, its rooms
// updated when they change, deleted when the client leaves on purpose
// (nothing to recover), replaced by the goodbye session when the
// connection drops.
func TestAdapterLiveSessionsFollowSockets(t *testing.T) {
	t.Parallel()
	rdb, prefix := testRedis(t)
	a := startPod(t, "pod-a", rdb, prefix, func(srv *socketio.Server) {
		srv.OnEvent("join", func(s *socketio.Socket, args []any, ack socketio.AckFunc) {
			s.Join(args[0].(string))
			if ack != nil {
				ack("ok")
			}
		})
	})
	ctx := context.Background()
	key := func(c *sioClient) string { return cluster.AdapterBase(prefix) + "session:/:" + c.pid }
	get := func(c *sioClient) string { v, _ := rdb.Get(ctx, key(c)).Result(); return v }
	var cls []*sioClient
	for range 30 {
		cls = append(cls, connectTo(t, a, map[string]any{"rooms": []any{"r"}}))
	}
	waitUntil(t, 5*time.Second, func() bool {
		for _, c := range cls {
			if v := get(c); !strings.Contains(v, `"live":true`) || !strings.Contains(v, c.sid) {
				return false
			}
		}
		return true
	})
	// A room change is written.
	cls[0].send(`421["join","later"]`)
	waitUntil(t, 5*time.Second, func() bool { return strings.Contains(get(cls[0]), `"later"`) })
	// Leaving on purpose deletes it.
	cls[1].send("41")
	waitUntil(t, 5*time.Second, func() bool { return rdb.Exists(ctx, key(cls[1])).Val() == 0 })
	// A dropped connection leaves the goodbye session, not a live one.
	cls[2].c.Close()
	waitUntil(t, 5*time.Second, func() bool {
		v := get(cls[2])
		return v != "" && !strings.Contains(v, `"live"`)
	})
	if ttl := rdb.TTL(ctx, key(cls[3])).Val(); ttl <= 2*time.Minute {
		t.Fatalf("a live session's TTL %v: it must outlive a crash by the window", ttl)
	}
}

// recoveryPods starts pods a and b on one Redis and a client on a in room
// "r" that has received one broadcast, so that it holds an offset.
func recoveryPods(t *testing.T) (rdb *redis.Client, prefix string, a, b *sioPod, cl *sioClient) {
	t.Helper()
	rdb, prefix = testRedis(t)
	a = startPod(t, "pod-a", rdb, prefix, nil)
	b = startPod(t, "pod-b", rdb, prefix, nil)
	waitPods(t, a, b)
	cl = connectTo(t, a, map[string]any{"rooms": []any{"r"}})
	_ = a.srv.To("r").Emit("e", 1)
	if ev := cl.next(); label(ev) != "e:1" || cl.offset == "" {
		t.Fatalf("got %v offset %q", label(ev), cl.offset)
	}
	return rdb, prefix, a, b, cl
}

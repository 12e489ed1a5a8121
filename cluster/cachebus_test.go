package cluster_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/chat"
	"github.com/fitmate/commserver/cluster"
	"github.com/fitmate/commserver/presence/presencetest"
	"github.com/fitmate/commserver/store"
)

const (
	alice = "aaaaaaaaaaaaaaaaaaaaaaa1"
	bob   = "bbbbbbbbbbbbbbbbbbbbbbb2"
)

// nobody is the chat service's Publisher here: what is delivered to sockets
// is the gateway's business, not what these tests look at.
type nobody struct{}

func (nobody) PublishRoom(context.Context, string, bool, string, any) error { return nil }
func (nobody) EvictFromRoom(context.Context, string, []string) error        { return nil }

// openMu serialises opening embedded stores: FerretDB's constructor writes a
// package variable (a data race when parallel tests open stores at once).
var openMu sync.Mutex

// openStore opens the real embedded store, shared by the "pods" of a test
// as they share MongoDB.
func openStore(t *testing.T) *store.DB {
	t.Helper()
	openMu.Lock()
	defer openMu.Unlock()
	db, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir(), Timeout: 5 * time.Second}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(context.Background()) })
	select {
	case <-db.IndexesReady():
	case <-time.After(30 * time.Second):
		t.Fatal("indexes not created in 30s")
	}
	return db
}

// chatPod is one pod's chat service and, when clustered, its bus.
type chatPod struct {
	svc *chat.Service
	bus *cluster.CacheBus
}

func startChatPod(t *testing.T, db *store.DB, name, prefix string, clustered bool) chatPod {
	t.Helper()
	var p chatPod
	var inval chat.Invalidator
	if clustered {
		rdb, err := cluster.NewClient(redisURL(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rdb.Close() })
		p.bus = cluster.NewCacheBus(rdb, prefix, name, time.Second, quiet())
		inval = p.bus
	}
	p.svc = chat.NewService(db, nobody{}, presencetest.NewOnline(), nil, inval,
		chat.Options{MaxMessageLength: 4000, MaxRoomIDLength: 64, MembershipTTL: 5 * time.Second}, quiet())
	if p.bus != nil {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			p.bus.Run(ctx, cluster.CacheHandlers{Room: p.svc.ForgetRoom, Resync: p.svc.ForgetCached})
		}()
		t.Cleanup(func() { cancel(); <-done })
		select {
		case <-p.bus.Subscribed():
		case <-time.After(5 * time.Second):
			t.Fatal("bus not subscribed in 5s")
		}
	}
	return p
}

func send(svc *chat.Service, user, room string) error {
	done := make(chan error, 1)
	svc.Send(context.Background(), chat.Identity{UserID: user}, chat.SendInput{ChatRoomID: room, Text: "hi"},
		func(_ chat.Message, err error) { done <- err })
	return <-done
}

func join(svc *chat.Service, user, room string) error {
	_, err := svc.Join(context.Background(), chat.Identity{UserID: user}, room, "", nil)
	return err
}

// refusedWithin reports how long until pod refuses the user's joinChat and
// sendMessage, or false when it still accepts them after d.
func refusedWithin(svc *chat.Service, user, room string, d time.Duration) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < d {
		if errors.Is(join(svc, user, room), commserver.ErrForbidden) && errors.Is(send(svc, user, room), commserver.ErrForbidden) {
			return time.Since(start), true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return d, false
}

// A member removed through PUT /chat/rooms on pod 2 is refused on pod 1 at
// once: pod 1 had the old member list cached for 5 s, and pod 2's
// announcement through Redis makes it read the new one.
func TestRoomChangeSeenByOtherPodAtOnce(t *testing.T) {
	t.Parallel()
	_, prefix := testRedis(t)
	db := openStore(t)
	pod1 := startChatPod(t, db, "pod1", prefix, true)
	pod2 := startChatPod(t, db, "pod2", prefix, true)
	ctx := context.Background()
	const room = "room-cluster"
	if _, err := pod2.svc.PutRoom(ctx, room, []string{alice, bob}); err != nil {
		t.Fatal(err)
	}
	// Pod 1 caches the room: bob chats there.
	if err := join(pod1.svc, bob, room); err != nil {
		t.Fatal(err)
	}
	if err := send(pod1.svc, bob, room); err != nil {
		t.Fatal(err)
	}
	if _, err := pod2.svc.PutRoom(ctx, room, []string{alice}); err != nil {
		t.Fatal(err)
	}
	took, ok := refusedWithin(pod1.svc, bob, room, 500*time.Millisecond)
	if !ok {
		t.Fatal("pod 1 still lets the removed member in 500ms after the change (its cache lives 5s)")
	}
	t.Logf("pod 1 refused the removed member %s after the change", took)
	if err := send(pod1.svc, alice, room); err != nil {
		t.Fatalf("the remaining member refused: %v", err)
	}
	// Added back on pod 1: pod 2 lets him in at once too.
	if err := join(pod2.svc, bob, room); !errors.Is(err, commserver.ErrForbidden) {
		t.Fatalf("pod 2 before the re-add: %v", err)
	}
	if _, err := pod1.svc.PutRoom(ctx, room, []string{alice, bob}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for join(pod2.svc, bob, room) != nil {
		if time.Since(start) > 500*time.Millisecond {
			t.Fatal("pod 2 still refuses the re-added member 500ms after the change")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Without the bus (one instance's wiring used on two pods by mistake) the
// other pod sees the change only when its cache expires: what the test
// above checks is the bus's doing.
func TestRoomChangeWithoutBusWaitsForTTL(t *testing.T) {
	t.Parallel()
	db := openStore(t)
	pod1 := startChatPod(t, db, "pod1", "", false)
	pod2 := startChatPod(t, db, "pod2", "", false)
	ctx := context.Background()
	const room = "room-alone"
	if _, err := pod2.svc.PutRoom(ctx, room, []string{alice, bob}); err != nil {
		t.Fatal(err)
	}
	if err := send(pod1.svc, bob, room); err != nil {
		t.Fatal(err)
	}
	if _, err := pod2.svc.PutRoom(ctx, room, []string{alice}); err != nil {
		t.Fatal(err)
	}
	if _, refused := refusedWithin(pod1.svc, bob, room, 500*time.Millisecond); refused {
		t.Fatal("pod 1 saw the change without a bus: the cache is not what the other test exercises")
	}
	if !errors.Is(join(pod2.svc, bob, room), commserver.ErrForbidden) {
		t.Fatal("the pod that made the change lets the removed member in")
	}
}

// Redis down: the member change is stored and the caller is not held; the
// other pods fall back to their TTL.
func TestRoomChangeWithRedisDown(t *testing.T) {
	t.Parallel()
	db := openStore(t)
	bus := cluster.NewCacheBus(deadRedis(t), "test:dead:", "pod1", 300*time.Millisecond, quiet())
	svc := chat.NewService(db, nobody{}, presencetest.NewOnline(), nil, bus,
		chat.Options{MaxMessageLength: 4000, MaxRoomIDLength: 64}, quiet())
	var resyncs atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		bus.Run(ctx, cluster.CacheHandlers{Room: svc.ForgetRoom, Resync: func() { resyncs.Add(1) }})
	}()
	defer func() { cancel(); <-done }()
	start := time.Now()
	if _, err := svc.PutRoom(context.Background(), "room-x", []string{alice}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("PUT took %s with Redis down", took)
	}
	if err := join(svc, alice, "room-x"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for bus.Health() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if bus.Health() == nil || bus.Errors() == 0 {
		t.Fatalf("health %v, errors %d: the outage is not reported", bus.Health(), bus.Errors())
	}
}

// The wire format is the documented one: a release that reads or writes it
// differently bumps KeyLayoutVersion (another channel).
func TestCacheMessageFormatV1(t *testing.T) {
	t.Parallel()
	rdb, prefix := testRedis(t)
	if got, want := cluster.CacheChannel(prefix), prefix+"cache:v1"; got != want {
		t.Fatalf("channel %q, want %q", got, want)
	}
	ctx := context.Background()
	ps := rdb.Subscribe(ctx, prefix+"cache:v1")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	bus := cluster.NewCacheBus(rdb, prefix, "pod-7", time.Second, quiet())
	if err := bus.RoomChanged(ctx, "room-1"); err != nil {
		t.Fatal(err)
	}
	m, err := ps.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"v":1,"kind":"room","id":"room-1","from":"pod-7"}`; m.Payload != want {
		t.Fatalf("payload %s, want %s", m.Payload, want)
	}
	// A receiver takes a v1 message from an older or newer writer of the same
	// version, ignores kinds it does not know and its own messages.
	var rooms []string
	recv := cluster.NewCacheBus(rdb, prefix, "pod-8", time.Second, quiet())
	got := make(chan string, 10)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		recv.Run(rctx, cluster.CacheHandlers{Room: func(id string) { got <- id }})
	}()
	defer func() { cancel(); <-done }()
	<-recv.Subscribed()
	for _, p := range []string{
		`{"v":1,"kind":"user","id":"u1","from":"pod-1"}`,
		`{"v":1,"kind":"room","id":"own","from":"pod-8"}`,
		`not json`,
		`{"v":1,"kind":"room","id":"room-2","from":"pod-1","extra":true}`,
	} {
		rdb.Publish(ctx, prefix+"cache:v1", p)
	}
	select {
	case id := <-got:
		rooms = append(rooms, id)
	case <-time.After(5 * time.Second):
		t.Fatal("nothing received")
	}
	select {
	case id := <-got:
		rooms = append(rooms, id)
	case <-time.After(200 * time.Millisecond):
	}
	if len(rooms) != 1 || rooms[0] != "room-2" {
		t.Fatalf("rooms forgotten: %v", rooms)
	}
}

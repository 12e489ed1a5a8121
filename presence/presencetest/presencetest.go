// Package presencetest checks that a presence.Store keeps the semantics the
// Tracker relies on, with several Trackers over one store standing in for
// pods: the in-memory store and the Redis one run the same cases.
package presencetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fitmate/commserver/presence"
)

// Timings of the cases: short, so the suite is quick, and far enough apart
// that a loaded machine does not blur them.
const (
	Grace  = 400 * time.Millisecond
	PodTTL = 900 * time.Millisecond
)

// Run runs every case; newStore returns a fresh, empty store for each.
func Run(t *testing.T, newStore func(t *testing.T) presence.Store) {
	t.Run("FirstSocketAnywhereOnce", func(t *testing.T) { firstSocketAnywhereOnce(t, newStore(t)) })
	t.Run("ReloadWithinGraceFlapsNothing", func(t *testing.T) { reloadWithinGrace(t, newStore(t)) })
	t.Run("LastSocketGoneOneOfflineAcrossPods", func(t *testing.T) { lastSocketGone(t, newStore(t)) })
	t.Run("NoGraceOfflineAtOnce", func(t *testing.T) { noGrace(t, newStore(t)) })
	t.Run("DeadPodReapedOnce", func(t *testing.T) { deadPod(t, newStore(t)) })
	t.Run("StoreDownThenBack", func(t *testing.T) { storeDownThenBack(t, newStore(t)) })
	t.Run("GracefulLeave", func(t *testing.T) { gracefulLeave(t, newStore(t)) })
	t.Run("ManyUsersOneBatch", func(t *testing.T) { manyUsers(t, newStore(t)) })
}

// Pod is one Tracker with what it announced.
type Pod struct {
	*presence.Tracker
	Name string
	Link *Link // cut it to make the pod unreachable, as a crash or a partition does

	mu      sync.Mutex
	changes []presence.Change
	stop    context.CancelFunc
	done    chan struct{}
}

// Changes returns what the pod announced so far.
func (p *Pod) Changes() []presence.Change {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.changes)
}

// Stop ends the pod's Run (a graceful exit) and waits for it.
func (p *Pod) Stop() {
	p.stop()
	<-p.done
}

// StartPod runs a Tracker named name over store until the test ends.
func StartPod(t *testing.T, store presence.Store, name string, grace time.Duration) *Pod {
	t.Helper()
	link := &Link{Store: store}
	p := &Pod{Name: name, Link: link, done: make(chan struct{})}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	p.Tracker = presence.New(link, func(c presence.Change) {
		p.mu.Lock()
		p.changes = append(p.changes, c)
		p.mu.Unlock()
	}, presence.Options{Grace: grace, PodTTL: PodTTL, Timeout: 300 * time.Millisecond, Pod: name + "-" + t.Name(),
		SweepInterval: 50 * time.Millisecond}, log)
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	go func() { defer close(p.done); p.Run(ctx) }()
	t.Cleanup(func() {
		link.Restore()
		cancel()
		<-p.done
	})
	return p
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

// ErrCut is what a cut Link answers.
var ErrCut = errors.New("presencetest: link cut")

// Link is a Store that can be cut: every call fails, as when the network
// between a pod and Redis is down or the pod is frozen.
type Link struct {
	presence.Store
	cut atomic.Bool
}

// Cut makes every call fail.
func (l *Link) Cut() { l.cut.Store(true) }

// Restore lets calls through again.
func (l *Link) Restore() { l.cut.Store(false) }

func (l *Link) check() error {
	if l.cut.Load() {
		return ErrCut
	}
	return nil
}

// Apply implements presence.Store.
func (l *Link) Apply(ctx context.Context, pod string, ops []presence.Op, ttl, grace time.Duration) ([]presence.Change, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	return l.Store.Apply(ctx, pod, ops, ttl, grace)
}

// Heartbeat implements presence.Store.
func (l *Link) Heartbeat(ctx context.Context, pod string, ttl time.Duration) (int, error) {
	if err := l.check(); err != nil {
		return 0, err
	}
	return l.Store.Heartbeat(ctx, pod, ttl)
}

// Sockets implements presence.Store.
func (l *Link) Sockets(ctx context.Context, pod string) (map[string]string, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	return l.Store.Sockets(ctx, pod)
}

// Sweep implements presence.Store.
func (l *Link) Sweep(ctx context.Context, reap bool, limit int) ([]string, bool, error) {
	if err := l.check(); err != nil {
		return nil, false, err
	}
	return l.Store.Sweep(ctx, reap, limit)
}

// Leave implements presence.Store.
func (l *Link) Leave(ctx context.Context, pod string) error {
	if err := l.check(); err != nil {
		return err
	}
	return l.Store.Leave(ctx, pod)
}

// Online implements presence.Store.
func (l *Link) Online(ctx context.Context, userIDs []string) (map[string]bool, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	return l.Store.Online(ctx, userIDs)
}

// all returns every change announced by pods, with the announcing pod.
func all(pods ...*Pod) []string {
	var out []string
	for _, p := range pods {
		for _, c := range p.Changes() {
			out = append(out, fmt.Sprintf("%s:%s", p.Name, describe(c)))
		}
	}
	slices.Sort(out)
	return out
}

func describe(c presence.Change) string {
	if c.Online {
		return "online " + c.UserID + " via " + c.SocketID
	}
	return "offline " + c.UserID
}

// count returns how many changes of the user in that direction pods announced.
func count(user string, online bool, pods ...*Pod) int {
	n := 0
	for _, p := range pods {
		for _, c := range p.Changes() {
			if c.UserID == user && c.Online == online {
				n++
			}
		}
	}
	return n
}

// waitCount waits until pods announced want such changes, then checks that
// no more arrive for settle.
func waitCount(t *testing.T, user string, online bool, want int, within, settle time.Duration, pods ...*Pod) {
	t.Helper()
	deadline := time.Now().Add(within)
	for count(user, online, pods...) < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(settle)
	if got := count(user, online, pods...); got != want {
		t.Fatalf("%s online=%v announced %d times, want %d; all: %v", user, online, got, want, all(pods...))
	}
}

func online(t *testing.T, p *Pod, users ...string) map[string]bool {
	t.Helper()
	on, err := p.Online(context.Background(), users)
	if err != nil {
		t.Fatal(err)
	}
	return on
}

func firstSocketAnywhereOnce(t *testing.T, store presence.Store) {
	a, b, c := StartPod(t, store, "a", Grace), StartPod(t, store, "b", Grace), StartPod(t, store, "c", Grace)
	// The same user's first sockets race on three pods: one announcement.
	var wg sync.WaitGroup
	for i, p := range []*Pod{a, b, c} {
		wg.Add(1)
		go func() { defer wg.Done(); p.Connect("u1", fmt.Sprintf("s%d", i)) }()
	}
	wg.Wait()
	waitCount(t, "u1", true, 1, 5*time.Second, 300*time.Millisecond, a, b, c)
	if on := online(t, b, "u1", "u2"); !on["u1"] || on["u2"] {
		t.Fatalf("online = %v", on)
	}
	// One socket left: still online, nothing announced.
	a.Disconnect("u1", "s0")
	b.Disconnect("u1", "s1")
	time.Sleep(Grace + 300*time.Millisecond)
	if n := count("u1", false, a, b, c); n != 0 {
		t.Fatalf("offline announced with a socket left: %v", all(a, b, c))
	}
	// A disconnect of a socket the pod does not hold changes nothing.
	a.Disconnect("u1", "s2")
	time.Sleep(Grace + 300*time.Millisecond)
	if n := count("u1", false, a, b, c); n != 0 {
		t.Fatalf("offline announced for another pod's socket: %v", all(a, b, c))
	}
}

func reloadWithinGrace(t *testing.T, store presence.Store) {
	a, b := StartPod(t, store, "a", Grace), StartPod(t, store, "b", Grace)
	a.Connect("u1", "tab1")
	waitCount(t, "u1", true, 1, 5*time.Second, 0, a, b)
	// A reload: the tab's socket goes, the new one comes on the other pod within the grace.
	a.Disconnect("u1", "tab1")
	time.Sleep(Grace / 4)
	b.Connect("u1", "tab1-reloaded")
	time.Sleep(Grace + 400*time.Millisecond)
	if got := all(a, b); len(got) != 1 {
		t.Fatalf("a reload within the grace flapped: %v", got)
	}
	if on := online(t, a, "u1"); !on["u1"] {
		t.Fatal("u1 not online after the reload")
	}
}

func lastSocketGone(t *testing.T, store presence.Store) {
	a, b, c := StartPod(t, store, "a", Grace), StartPod(t, store, "b", Grace), StartPod(t, store, "c", Grace)
	a.Connect("u1", "x")
	b.Connect("u1", "y")
	waitCount(t, "u1", true, 1, 5*time.Second, 0, a, b, c)
	start := time.Now()
	a.Disconnect("u1", "x")
	b.Disconnect("u1", "y")
	// Within the grace: nothing announced, but no socket either (a message
	// now would be notified).
	time.Sleep(Grace / 2)
	if on := online(t, c, "u1"); on["u1"] {
		t.Fatal("u1 online within the grace with no socket")
	}
	if n := count("u1", false, a, b, c); n != 0 {
		t.Fatalf("offline before the grace was over: %v", all(a, b, c))
	}
	waitCount(t, "u1", false, 1, 5*time.Second, 300*time.Millisecond, a, b, c)
	if took := time.Since(start); took < Grace {
		t.Fatalf("offline after %s, before the grace of %s", took, Grace)
	}
	if on := online(t, c, "u1"); on["u1"] {
		t.Fatal("u1 still online after userOffline")
	}
	// Back again: one new online.
	c.Connect("u1", "z")
	waitCount(t, "u1", true, 2, 5*time.Second, 200*time.Millisecond, a, b, c)
}

func noGrace(t *testing.T, store presence.Store) {
	a, b := StartPod(t, store, "a", 0), StartPod(t, store, "b", 0)
	a.Connect("u1", "x")
	waitCount(t, "u1", true, 1, 5*time.Second, 0, a, b)
	a.Disconnect("u1", "x")
	waitCount(t, "u1", false, 1, 2*time.Second, 200*time.Millisecond, a, b)
	if got := a.Changes(); len(got) != 2 || got[1].Online {
		t.Fatalf("pod a announced %v; with no grace the pod of the last socket announces", got)
	}
}

func deadPod(t *testing.T, store presence.Store) {
	a, b, c := StartPod(t, store, "a", Grace), StartPod(t, store, "b", Grace), StartPod(t, store, "c", Grace)
	a.Connect("u1", "a1")
	a.Connect("u1", "a2")
	a.Connect("u2", "a3")
	b.Connect("u2", "b1") // u2 keeps a socket on a live pod
	for _, u := range []string{"u1", "u2"} {
		waitCount(t, u, true, 1, 5*time.Second, 0, a, b, c)
	}
	time.Sleep(100 * time.Millisecond)
	killed := time.Now()
	a.Link.Cut() // pod a dies without a goodbye
	// Before the lease is over nothing happens.
	time.Sleep(PodTTL / 2)
	if n := count("u1", false, a, b, c); n != 0 {
		t.Fatalf("offline before the dead pod's lease was over: %v", all(a, b, c))
	}
	waitCount(t, "u1", false, 1, 10*time.Second, 500*time.Millisecond, a, b, c)
	if took := time.Since(killed); took < PodTTL/2 {
		t.Fatalf("a dead pod's users offline after %s; its lease is %s", took, PodTTL)
	}
	if n := count("u1", false, a); n != 0 {
		t.Fatal("the dead pod announced")
	}
	if n := count("u2", false, a, b, c); n != 0 {
		t.Fatalf("u2 has a socket on a live pod but was announced offline: %v", all(a, b, c))
	}
	if on := online(t, b, "u1", "u2"); on["u1"] || !on["u2"] {
		t.Fatalf("online after the reaping = %v", on)
	}
	// The pod was only cut off: when it is back, it re-asserts its sockets
	// and its users are online again, announced once.
	a.Link.Restore()
	waitCount(t, "u1", true, 2, 10*time.Second, 500*time.Millisecond, a, b, c)
	if on := online(t, b, "u1"); !on["u1"] {
		t.Fatal("u1 not online after its pod re-asserted its sockets")
	}
}

func storeDownThenBack(t *testing.T, store presence.Store) {
	a, b := StartPod(t, store, "a", Grace), StartPod(t, store, "b", Grace)
	a.Link.Cut()
	// Connect and Disconnect do not wait for an unreachable store.
	start := time.Now()
	for i := range 1000 {
		a.Connect(fmt.Sprintf("user%d", i%10), fmt.Sprintf("s%d", i))
	}
	a.Disconnect("user0", "s0")
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Fatalf("1001 ops took %s with the store down", took)
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.Health() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := a.Health(); !errors.Is(err, ErrCut) {
		t.Fatalf("Health = %v, want the store's error", err)
	}
	if _, err := a.Online(context.Background(), []string{"user1"}); !errors.Is(err, ErrCut) {
		t.Fatalf("Online with the store down: %v", err)
	}
	if a.Stats().Errors == 0 {
		t.Fatal("errors not counted")
	}
	// Back: the pod re-asserts what it holds, each user announced online once.
	a.Link.Restore()
	for i := range 10 {
		waitCount(t, fmt.Sprintf("user%d", i), true, 1, 10*time.Second, 0, a, b)
	}
	time.Sleep(300 * time.Millisecond)
	if got := len(all(a, b)); got != 10 {
		t.Fatalf("%d changes after the store came back, want 10: %v", got, all(a, b))
	}
	if err := a.Health(); err != nil {
		t.Fatalf("Health after recovery = %v", err)
	}
	held, err := store.Sockets(context.Background(), a.Pod())
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 999 {
		t.Fatalf("the store holds %d of the pod's sockets, want 999", len(held))
	}
}

func gracefulLeave(t *testing.T, store presence.Store) {
	a, b := StartPod(t, store, "a", Grace), StartPod(t, store, "b", Grace)
	a.Connect("u1", "x")
	waitCount(t, "u1", true, 1, 5*time.Second, 0, a, b)
	a.Stop() // SIGTERM: the pod records its sockets as gone and leaves
	held, err := store.Sockets(context.Background(), a.Pod())
	if err != nil || len(held) != 0 {
		t.Fatalf("after a graceful stop the store holds %v (%v)", held, err)
	}
	// A live pod announces after the grace, not after the lease.
	waitCount(t, "u1", false, 1, PodTTL, 200*time.Millisecond, a, b)
	if n := count("u1", false, b); n != 1 {
		t.Fatalf("announced by %v, want the live pod", all(a, b))
	}
}

func manyUsers(t *testing.T, store presence.Store) {
	a, b := StartPod(t, store, "a", Grace), StartPod(t, store, "b", Grace)
	const n = 3000
	for i := range n {
		a.Connect(fmt.Sprintf("m%d", i), fmt.Sprintf("s%d", i))
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(a.Changes()) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := len(a.Changes()); got != n {
		t.Fatalf("%d online announcements, want %d", got, n)
	}
	for i := range n {
		a.Disconnect(fmt.Sprintf("m%d", i), fmt.Sprintf("s%d", i))
	}
	deadline = time.Now().Add(20 * time.Second)
	for len(all(a, b)) < 2*n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if got := len(all(a, b)); got != 2*n {
		t.Fatalf("%d announcements, want %d", got, 2*n)
	}
}

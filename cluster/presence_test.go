package cluster_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fitmate/commserver/cluster"
	"github.com/fitmate/commserver/presence"
	"github.com/fitmate/commserver/presence/presencetest"
)

// The Redis store keeps the semantics the in-memory one keeps: three
// Trackers in this process over the real Redis stand in for pods.
func TestPresenceStore(t *testing.T) {
	t.Parallel()
	presencetest.Run(t, func(t *testing.T) presence.Store {
		rdb, prefix := testRedis(t)
		return cluster.NewPresenceStore(rdb, prefix)
	})
}

// The key layout is the documented one (docs/cluster.md): a release that
// reads or writes it differently must bump KeyLayoutVersion, so that it
// does not share keys with the running one.
func TestPresenceKeyLayoutV1(t *testing.T) {
	t.Parallel()
	rdb, prefix := testRedis(t)
	ctx := context.Background()
	s := cluster.NewPresenceStore(rdb, prefix)
	base := prefix + "{presence:v1}:"
	if got := cluster.PresenceBase(prefix); got != base {
		t.Fatalf("base = %q, want %q", got, base)
	}
	before := time.Now()
	ch, err := s.Apply(ctx, "pod-a", []presence.Op{{Connect: true, UserID: "u1", SocketID: "s1"},
		{Connect: true, UserID: "u1", SocketID: "s2"}}, 10*time.Second, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch) != 1 || ch[0] != (presence.Change{UserID: "u1", Online: true, SocketID: "s1"}) {
		t.Fatalf("changes = %v", ch)
	}
	if got := rdb.HGetAll(ctx, base+"user:u1").Val(); len(got) != 2 || got["s1"] != "pod-a" || got["s2"] != "pod-a" {
		t.Fatalf("user hash = %v", got)
	}
	if got := rdb.HGetAll(ctx, base+"pod:pod-a").Val(); len(got) != 2 || got["s1"] != "u1" {
		t.Fatalf("pod hash = %v", got)
	}
	if !rdb.SIsMember(ctx, base+"online", "u1").Val() {
		t.Fatal("u1 not in the online set")
	}
	lease := rdb.ZScore(ctx, base+"pods", "pod-a").Val()
	if end := time.UnixMilli(int64(lease)); end.Before(before.Add(9*time.Second)) || end.After(time.Now().Add(11*time.Second)) {
		t.Fatalf("lease ends %s, want about 10s from now (Unix ms)", end)
	}
	if _, err := s.Apply(ctx, "pod-a", []presence.Op{{UserID: "u1", SocketID: "s1"}, {UserID: "u1", SocketID: "s2"}},
		10*time.Second, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := rdb.Exists(ctx, base+"user:u1", base+"pod:pod-a").Val(); n != 0 {
		t.Fatalf("%d socket hashes left after the last socket", n)
	}
	end := time.UnixMilli(int64(rdb.ZScore(ctx, base+"grace", "u1").Val()))
	if end.Before(before.Add(4*time.Second)) || end.After(time.Now().Add(6*time.Second)) {
		t.Fatalf("grace ends %s, want about 5s from now (Unix ms)", end)
	}
	if !rdb.SIsMember(ctx, base+"online", "u1").Val() {
		t.Fatal("u1 left the online set within the grace")
	}
}

// A Redis that lost its data (restarted without persistence) is noticed at
// the next lease renewal: each pod re-asserts its sockets and their users
// are online again.
func TestPresenceRedisLostData(t *testing.T) {
	t.Parallel()
	rdb, prefix := testRedis(t)
	store := cluster.NewPresenceStore(rdb, prefix)
	a := presencetest.StartPod(t, store, "a", presencetest.Grace)
	b := presencetest.StartPod(t, store, "b", presencetest.Grace)
	a.Connect("u1", "s1")
	b.Connect("u2", "s2")
	waitChanges(t, 2, a, b)
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		rdb.Del(ctx, iter.Val())
	}
	waitChanges(t, 4, a, b) // each pod announces its user again
	on, err := a.Online(ctx, []string{"u1", "u2"})
	if err != nil || !on["u1"] || !on["u2"] {
		t.Fatalf("online = %v, %v", on, err)
	}
}

func waitChanges(t *testing.T, want int, pods ...*presencetest.Pod) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := 0
		for _, p := range pods {
			n += len(p.Changes())
		}
		if n == want {
			return
		}
		if n > want || time.Now().After(deadline) {
			t.Fatalf("%d changes, want %d: %v / %v", n, want, pods[0].Changes(), pods[1].Changes())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Redis unreachable: a tracker keeps taking sockets without waiting, reports
// errors fast and counts them, and does not panic.
func TestPresenceRedisUnreachable(t *testing.T) {
	t.Parallel()
	store := cluster.NewPresenceStore(deadRedis(t), "test:dead:")
	tr := presence.New(store, nil, presence.Options{Grace: time.Second, Timeout: 300 * time.Millisecond}, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); tr.Run(ctx) }()

	start := time.Now()
	for i := range 10_000 {
		tr.Connect("u"+strconv.Itoa(i%100), "s"+strconv.Itoa(i))
		if i%2 == 0 {
			tr.Disconnect("u"+strconv.Itoa(i%100), "s"+strconv.Itoa(i))
		}
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("15000 ops took %s with Redis down", took)
	}
	start = time.Now()
	_, err := tr.Online(context.Background(), []string{"u1"})
	if err == nil {
		t.Fatal("Online answered with Redis down")
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Online took %s to fail", took)
	}
	deadline := time.Now().Add(5 * time.Second)
	for tr.Health() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if tr.Health() == nil || tr.Stats().Errors == 0 {
		t.Fatalf("health %v, stats %+v: errors not reported", tr.Health(), tr.Stats())
	}
	if s := tr.Stats(); s.Sockets != 5000 {
		t.Fatalf("%d local sockets, want 5000", s.Sockets)
	}
	// Shutting down with Redis down ends within the timeouts.
	start = time.Now()
	cancel()
	wg.Wait()
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Run took %s to end with Redis down", took)
	}
}

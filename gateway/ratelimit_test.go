package gateway

import (
	"testing"
	"time"
)

func TestEventLimitsPerUser(t *testing.T) {
	l := newEventLimits(60, 3) // one a second, three at once
	now := time.Now()
	for i := 0; i < 3; i++ {
		if ok, _ := l.allow("u1", now); !ok {
			t.Fatalf("event %d of the burst refused", i)
		}
	}
	if ok, abusive := l.allow("u1", now); ok || abusive {
		t.Fatalf("event past the burst: ok %v abusive %v", ok, abusive)
	}
	// Another user has a budget of their own.
	if ok, _ := l.allow("u2", now); !ok {
		t.Fatal("u2 refused because of u1")
	}
	// The budget is the user's, not a socket's: nothing here knows sockets,
	// so a reconnect (same user) finds the bucket as it was left.
	var abusive bool
	for i := 0; i < 100; i++ {
		_, abusive = l.allow("u1", now)
	}
	if !abusive {
		t.Fatal("101 refusals in a row are abuse")
	}
	// One second at 60 a minute gives one token, and resets the refusals.
	if ok, abusive := l.allow("u1", now.Add(1100*time.Millisecond)); !ok || abusive {
		t.Fatalf("after a second: ok %v abusive %v", ok, abusive)
	}
	if _, abusive := l.allow("u1", now.Add(1100*time.Millisecond)); abusive {
		t.Fatal("refusals not reset by an allowed event")
	}
}

func TestEventLimitsForgetFullBuckets(t *testing.T) {
	l := newEventLimits(60, 3)
	now := time.Now()
	l.allow("idle", now)
	l.allow("busy", now)
	count := func() int {
		n := 0
		for i := range l.shards {
			n += len(l.shards[i].users)
		}
		return n
	}
	// Three seconds refill a bucket of three at one a second; the sweep runs
	// once a minute, at the next event of the shard.
	later := now.Add(2 * time.Minute)
	for i := range l.shards {
		l.shards[i].lastSweep = now
	}
	l.allow("busy", later.Add(-time.Second)) // busy was seen recently: kept
	for i := range l.shards {
		l.sweep(&l.shards[i], later)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d buckets kept, want only busy's", n)
	}
}

func TestLogLimiter(t *testing.T) {
	l := newLogLimiter(10 * time.Second)
	now := time.Now()
	if ok, dropped := l.allow("k", now); !ok || dropped != 0 {
		t.Fatalf("first line: %v %d", ok, dropped)
	}
	for i := 0; i < 5; i++ {
		if ok, _ := l.allow("k", now.Add(time.Second)); ok {
			t.Fatal("a second line within the interval")
		}
	}
	if ok, _ := l.allow("other", now.Add(time.Second)); !ok {
		t.Fatal("another key held back")
	}
	if ok, dropped := l.allow("k", now.Add(11*time.Second)); !ok || dropped != 5 {
		t.Fatalf("after the interval: %v, %d held back, want 5", ok, dropped)
	}
}

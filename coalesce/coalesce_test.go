package coalesce

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	commserver "github.com/fitmate/commserver"
)

// fakeCounts stands in for a store query such as CountUnread (the real
// queries are tested in package store and end to end). Every user's count is the number of the
// query that answered, so a test sees which query served which request.
const testMax = 500

type fakeCounts struct {
	mu      sync.Mutex
	queries [][]string
	gate    chan struct{} // when set, each query waits for a value on it
	err     error
}

func (f *fakeCounts) count(ctx context.Context, users []string) (map[string]int64, error) {
	f.mu.Lock()
	f.queries = append(f.queries, append([]string(nil), users...))
	q, gate := int64(len(f.queries)), f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.err != nil {
		return nil, f.err
	}
	out := map[string]int64{}
	for _, u := range users {
		if u != "nobody" {
			out[u] = q
		}
	}
	return out, nil
}

func (f *fakeCounts) snapshot() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]string(nil), f.queries...)
}

func TestGroupLoneRequestQueriesAtOnce(t *testing.T) {
	f := &fakeCounts{}
	c := New("the count", testMax, time.Second, f.count)
	n, err := c.Get(context.Background(), "alice")
	if err != nil || n != 1 {
		t.Fatalf("Count = %d, %v; want 1 (the first query)", n, err)
	}
	if n, err := c.Get(context.Background(), "nobody"); err != nil || n != 0 {
		t.Fatalf("a user absent from the answer: %d, %v; want 0", n, err)
	}
	if q := f.snapshot(); len(q) != 2 || len(q[0]) != 1 || q[0][0] != "alice" {
		t.Fatalf("queries %v", q)
	}
}

// Requests made while a query is under way are answered together by the
// next query, never by the one that was already running.
func TestGroupBatchesRequestsMadeDuringAQuery(t *testing.T) {
	f := &fakeCounts{gate: make(chan struct{})}
	c := New("the count", testMax, 5*time.Second, f.count)
	first := make(chan int64, 1)
	go func() { n, _ := c.Get(context.Background(), "alice"); first <- n }()
	waitFor(t, func() bool { return len(f.snapshot()) == 1 })

	type res struct {
		user string
		n    int64
		err  error
	}
	results := make(chan res, 60)
	for i := range 60 {
		u := fmt.Sprint("user-", i%20) // 20 users, 3 requests each
		if i == 0 {
			u = "alice" // alice again: this one must get a later count
		}
		go func() { n, err := c.Get(context.Background(), u); results <- res{u, n, err} }()
	}
	waitFor(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		n := 0
		for _, w := range c.waiting {
			n += len(w)
		}
		return n == 60
	})
	f.gate <- struct{}{} // the first query answers
	if n := <-first; n != 1 {
		t.Fatalf("first request got %d, want 1", n)
	}
	f.gate <- struct{}{} // the second, for everyone else
	for range 60 {
		r := <-results
		if r.err != nil || r.n != 2 {
			t.Fatalf("%s got %d, %v; want 2 (the query after its request)", r.user, r.n, r.err)
		}
	}
	q := f.snapshot()
	if len(q) != 2 || len(q[1]) != 21 {
		t.Fatalf("queries %d, the second for %d users; want 2 queries, the second for the 21 distinct users", len(q), len(q[1]))
	}
}

func TestGroupSplitsLargeBatches(t *testing.T) {
	f := &fakeCounts{gate: make(chan struct{})}
	c := New("the count", testMax, 5*time.Second, f.count)
	go func() { _, _ = c.Get(context.Background(), "first") }()
	waitFor(t, func() bool { return len(f.snapshot()) == 1 })
	total := testMax + 10
	var wg sync.WaitGroup
	for i := range total {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = c.Get(context.Background(), fmt.Sprint("u", i)) }()
	}
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.order) == total })
	close(f.gate)
	wg.Wait()
	q := f.snapshot()
	if len(q) != 3 || len(q[1]) != testMax || len(q[2]) != 10 {
		t.Fatalf("%d queries; want 3: 1, %d, then 10", len(q), testMax)
	}
}

func TestGroupErrors(t *testing.T) {
	down := &commserver.Error{Code: commserver.CodeStorageUnavailable, Message: "store down"}
	f := &fakeCounts{err: down}
	c := New("the count", testMax, time.Second, f.count)
	if _, err := c.Get(context.Background(), "alice"); !errors.Is(err, down) {
		t.Fatalf("err = %v, want the store's", err)
	}

	// A caller who stops waiting gets STORAGE_UNAVAILABLE; the query goes on
	// for the others and the counter keeps working.
	f = &fakeCounts{gate: make(chan struct{})}
	c = New("the count", testMax, 5*time.Second, f.count)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := c.Get(ctx, "alice")
	if commserver.ErrorCode(err) != commserver.CodeStorageUnavailable {
		t.Fatalf("err = %v, want STORAGE_UNAVAILABLE", err)
	}
	close(f.gate)
	if n, err := c.Get(context.Background(), "bob"); err != nil || n == 0 {
		t.Fatalf("after a caller gave up: %d, %v", n, err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

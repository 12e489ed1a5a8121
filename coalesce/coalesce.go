// Package coalesce gathers concurrent look-ups by key into batched queries.
// A request finding no query under way starts one at once (a lone request
// waits for nothing); requests arriving while a query is under way wait for
// the next one, which answers all of them. So an answer is never older than
// its request, and a reconnect storm of thousands of sockets costs the store
// a few queries instead of a queue of thousands.
package coalesce

import (
	"context"
	"sync"
	"time"

	commserver "github.com/fitmate/commserver"
)

// Group answers Get from batched queries of at most max keys.
type Group[V any] struct {
	what    string // what is looked up, for errors: "the unread count"
	max     int
	timeout time.Duration // of one query, beyond the store's own deadline
	query   func(ctx context.Context, keys []string) (map[string]V, error)

	mu      sync.Mutex
	waiting map[string][]chan result[V]
	order   []string // keys in waiting, oldest request first
	running bool
}

type result[V any] struct {
	v   V
	err error
}

// New returns a Group. query answers for many keys at once; a key absent
// from its answer gets V's zero value.
func New[V any](what string, max int, timeout time.Duration, query func(ctx context.Context, keys []string) (map[string]V, error)) *Group[V] {
	return &Group[V]{what: what, max: max, timeout: timeout, query: query, waiting: map[string][]chan result[V]{}}
}

// Get returns key's value from a query that started after this call. When
// ctx ends first it returns STORAGE_UNAVAILABLE.
func (g *Group[V]) Get(ctx context.Context, key string) (V, error) {
	ch := make(chan result[V], 1)
	g.mu.Lock()
	if _, ok := g.waiting[key]; !ok {
		g.order = append(g.order, key)
	}
	g.waiting[key] = append(g.waiting[key], ch)
	if !g.running {
		g.running = true
		go g.run()
	}
	g.mu.Unlock()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero V
		return zero, &commserver.Error{Code: commserver.CodeStorageUnavailable,
			Message: g.what + " did not come back in time", Err: ctx.Err()}
	}
}

// run queries for the waiting keys, oldest first, until none wait.
func (g *Group[V]) run() {
	for {
		g.mu.Lock()
		if len(g.order) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		n := min(len(g.order), g.max)
		keys := g.order[:n:n]
		g.order = g.order[n:]
		batch := make(map[string][]chan result[V], n)
		for _, k := range keys {
			batch[k] = g.waiting[k]
			delete(g.waiting, k)
		}
		g.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
		values, err := g.query(ctx, keys)
		cancel()
		for k, chans := range batch {
			for _, ch := range chans {
				ch <- result[V]{values[k], err} // buffered: never blocks
			}
		}
	}
}

package notify

import (
	"context"
	"sync"
	"time"

	commserver "github.com/fitmate/commserver"
)

// maxCountBatch is the most users one unread-count query asks about.
const maxCountBatch = 500

// unreadCounter gathers concurrent unread counts into one store query. A
// request finding no query under way starts one at once (a lone request waits
// for nothing); requests arriving while a query is under way wait for the
// next one, which counts for all of them. So a count is never older than its
// request (the recount's guarantee), and a reconnect storm of thousands of
// sockets costs the store a few queries instead of a queue of thousands.
type unreadCounter struct {
	count   func(ctx context.Context, userIDs []string) (map[string]int64, error)
	timeout time.Duration // of one query, beyond the store's own deadline

	mu      sync.Mutex
	waiting map[string][]chan countResult
	order   []string // users in waiting, oldest request first
	running bool
}

type countResult struct {
	n   int64
	err error
}

func newUnreadCounter(count func(context.Context, []string) (map[string]int64, error), timeout time.Duration) *unreadCounter {
	return &unreadCounter{count: count, timeout: timeout, waiting: map[string][]chan countResult{}}
}

// Count returns the user's unread count from a query that started after this
// call. When ctx ends first it returns ErrStorageUnavailable.
func (c *unreadCounter) Count(ctx context.Context, userID string) (int64, error) {
	ch := make(chan countResult, 1)
	c.mu.Lock()
	if _, ok := c.waiting[userID]; !ok {
		c.order = append(c.order, userID)
	}
	c.waiting[userID] = append(c.waiting[userID], ch)
	if !c.running {
		c.running = true
		go c.run()
	}
	c.mu.Unlock()
	select {
	case r := <-ch:
		return r.n, r.err
	case <-ctx.Done():
		return 0, &commserver.Error{Code: commserver.CodeStorageUnavailable,
			Message: "the unread count did not come back in time", Err: ctx.Err()}
	}
}

// run queries for the waiting users, oldest first, until none wait.
func (c *unreadCounter) run() {
	for {
		c.mu.Lock()
		if len(c.order) == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		n := min(len(c.order), maxCountBatch)
		users := c.order[:n:n]
		c.order = c.order[n:]
		batch := make(map[string][]chan countResult, n)
		for _, u := range users {
			batch[u] = c.waiting[u]
			delete(c.waiting, u)
		}
		c.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		counts, err := c.count(ctx, users)
		cancel()
		for u, chans := range batch {
			for _, ch := range chans {
				ch <- countResult{counts[u], err} // buffered: never blocks
			}
		}
	}
}

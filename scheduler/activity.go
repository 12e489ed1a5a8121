package scheduler

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// ConnectionStore keeps each user's last connection (Activity.RecordConnections).
type ConnectionStore interface {
	RecordConnections(ctx context.Context, seen map[string]time.Time) error
}

// ConnectionRecorder records that users connected, for the active-user
// definition, without turning a connect storm into a write storm: a user is
// written at most once per Debounce on this instance, and the writes of a
// FlushInterval go to the store together (an upsert per user, keyed by _id).
// Seen never blocks and never touches the store.
type ConnectionRecorder struct {
	store    ConnectionStore
	clock    clockwork.Clock
	debounce time.Duration
	flush    time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	pending map[string]time.Time // seen, not written yet
	written map[string]time.Time // last written, within debounce
}

// RecorderOptions tune a ConnectionRecorder; zero values take the defaults.
type RecorderOptions struct {
	Debounce      time.Duration // least time between two writes for one user (1h)
	FlushInterval time.Duration // how often pending connections are written (30s)
	Clock         clockwork.Clock
}

// maxPending caps the connections waiting for a flush; beyond it new users
// are dropped until the next flush (they are recorded at their next connect).
const maxPending = 200_000

// NewConnectionRecorder returns a recorder; Run writes what it sees.
func NewConnectionRecorder(store ConnectionStore, o RecorderOptions, log *slog.Logger) *ConnectionRecorder {
	if o.Debounce <= 0 {
		o.Debounce = time.Hour
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 30 * time.Second
	}
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ConnectionRecorder{store: store, clock: o.Clock, debounce: o.Debounce, flush: o.FlushInterval,
		log: log.With("component", "connections"), pending: map[string]time.Time{}, written: map[string]time.Time{}}
}

// Seen notes that userID connected now.
func (c *ConnectionRecorder) Seen(userID string) {
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if w, ok := c.written[userID]; ok && now.Sub(w) < c.debounce {
		return
	}
	if _, ok := c.pending[userID]; !ok && len(c.pending) >= maxPending {
		return
	}
	c.pending[userID] = now
}

// Run writes pending connections every FlushInterval until ctx is done,
// then once more.
func (c *ConnectionRecorder) Run(ctx context.Context) {
	t := c.clock.NewTicker(c.flush)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			c.Flush(fctx)
			cancel()
			return
		case <-t.Chan():
			c.Flush(ctx)
		}
	}
}

// Flush writes the pending connections now. What fails to be written is
// kept for the next flush.
func (c *ConnectionRecorder) Flush(ctx context.Context) {
	now := c.clock.Now()
	c.mu.Lock()
	batch := c.pending
	c.pending = map[string]time.Time{}
	for u, w := range c.written {
		if now.Sub(w) >= c.debounce {
			delete(c.written, u)
		}
	}
	c.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	if err := c.store.RecordConnections(ctx, batch); err != nil {
		c.log.Warn("recording connections; kept for the next flush", "users", len(batch), "err", err)
		c.mu.Lock()
		for u, t := range batch {
			if _, ok := c.pending[u]; !ok && len(c.pending) < maxPending {
				c.pending[u] = t
			}
		}
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	maps.Copy(c.written, batch)
	c.mu.Unlock()
}

package presence

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Options tune a Tracker.
type Options struct {
	// Grace is how long a user whose last socket went away stays online, so
	// that a page reload does not announce userOffline then userOnline
	// (PRESENCE_GRACE). 0 announces offline at once.
	Grace time.Duration
	// PodTTL is how long a pod that stopped renewing its lease (crashed,
	// partitioned) keeps its sockets before a live pod removes them
	// (PRESENCE_POD_TTL). The lease is renewed every PodTTL/3. Default 15s.
	PodTTL time.Duration
	// Timeout bounds every store call (CLUSTER_REDIS_TIMEOUT). Default 1s.
	Timeout time.Duration
	// Pod names this process in the store; default: the host name and a
	// random suffix (a restarted process is a new pod).
	Pod string
	// SweepInterval is how often this pod looks for users whose grace is
	// over and pods whose lease expired. Default Grace/4, within [50ms, 1s].
	SweepInterval time.Duration
	// MaxPending bounds the ops waiting for the store while it is
	// unreachable; past it they are dropped and the pod re-asserts its
	// sockets when the store is back. Default 100000.
	MaxPending int
}

// Limits that are not configuration.
const (
	maxBatch   = 512  // ops per store call
	sweepLimit = 1000 // users or dead sockets per sweep
)

// Tracker records this pod's sockets in a Store and tells the handler it was
// given when a user comes online or goes offline cluster-wide: one code path
// for one instance (MemoryStore) and for a cluster (Redis).
//
// Connect and Disconnect never wait for the store: they update this pod's
// own view and queue the op for Run, which applies ops in order, in batches.
// When the store is unreachable, errors are counted (Stats, Health) and
// logged once per outage; when it answers again the pod re-asserts its live
// sockets. Announcements are made once across pods: the store decides who
// makes each (a change decided by a pod that dies before delivering it is
// not made by another).
type Tracker struct {
	store   Store
	handler func(Change)
	opts    Options
	pod     string
	log     *slog.Logger
	beat    time.Duration // lease renewal period

	mu      sync.Mutex
	local   map[string]string // socket → user: the sockets on this pod
	pending []Op
	dirty   bool // pending ops were lost: re-assert local against the store
	wake    chan struct{}

	changesMu sync.Mutex
	changes   []Change
	changed   chan struct{}

	errors        atomic.Uint64
	announced     atomic.Uint64
	unhealthy     atomic.Bool
	lastErr       atomic.Pointer[error]
	healthySince  time.Time // owned by Run
	sweepRequests chan struct{}
}

// Stats are a Tracker's counters.
type Stats struct {
	Errors    uint64 // store calls that failed
	Announced uint64 // changes handed to the handler
	Sockets   int    // sockets on this pod
	Pending   int    // ops not yet applied to the store
}

// New returns a Tracker over store. handler receives every change this pod
// is to announce, from one goroutine, in order; it must not block for long
// (a slow handler delays later announcements, never Connect or Disconnect).
// Call Run to apply ops and announce.
func New(store Store, handler func(Change), opts Options, log *slog.Logger) *Tracker {
	if opts.Grace < 0 {
		opts.Grace = 0
	}
	if opts.PodTTL <= 0 {
		opts.PodTTL = 15 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if opts.Pod == "" {
		opts.Pod = NewPodID()
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = min(max(opts.Grace/4, 50*time.Millisecond), time.Second)
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 100_000
	}
	if handler == nil {
		handler = func(Change) {}
	}
	return &Tracker{store: store, handler: handler, opts: opts, pod: opts.Pod, log: log.With("pod", opts.Pod),
		beat: opts.PodTTL / 3, local: map[string]string{}, wake: make(chan struct{}, 1),
		changed: make(chan struct{}, 1), sweepRequests: make(chan struct{}, 1)}
}

// NewPodID returns a pod id: the host name and a random suffix.
func NewPodID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "pod"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return host + "-" + hex.EncodeToString(b)
}

// Pod is this pod's id in the store.
func (t *Tracker) Pod() string { return t.pod }

// Connect records a socket of the user on this pod. It does not wait.
func (t *Tracker) Connect(userID, socketID string) {
	t.mu.Lock()
	t.local[socketID] = userID
	t.queue(Op{Connect: true, UserID: userID, SocketID: socketID})
	t.mu.Unlock()
}

// Disconnect forgets a socket of the user on this pod. It does not wait.
// A socket this pod does not hold is ignored.
func (t *Tracker) Disconnect(userID, socketID string) {
	t.mu.Lock()
	if u, ok := t.local[socketID]; ok && u == userID {
		delete(t.local, socketID)
		t.queue(Op{UserID: userID, SocketID: socketID})
	}
	t.mu.Unlock()
}

// queue adds op for Run; t.mu is held.
func (t *Tracker) queue(op Op) {
	if t.dirty {
		return // the next re-assertion covers it: it reads t.local
	}
	if len(t.pending) >= t.opts.MaxPending {
		t.pending = nil
		t.dirty = true
		t.log.Warn("presence: too many ops waiting for the store; will re-assert this pod's sockets", "max", t.opts.MaxPending)
	} else {
		t.pending = append(t.pending, op)
	}
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// Online reports, for each user, whether they have a socket anywhere now
// (chat and notify ask it to choose whom to notify: a user within the grace
// after their last socket is not online here). It waits at most the store
// timeout; on error the caller decides (chat and notify treat users as offline).
func (t *Tracker) Online(ctx context.Context, userIDs []string) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
	defer cancel()
	on, err := t.store.Online(ctx, userIDs)
	if err != nil {
		t.fail("online", err)
		return nil, fmt.Errorf("presence: %w", err)
	}
	return on, nil
}

// Health is nil while the store answers, else the last error.
func (t *Tracker) Health() error {
	if !t.unhealthy.Load() {
		return nil
	}
	if p := t.lastErr.Load(); p != nil {
		return fmt.Errorf("presence store: %w", *p)
	}
	return errors.New("presence store unreachable")
}

// Stats returns the counters.
func (t *Tracker) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return Stats{Errors: t.errors.Load(), Announced: t.announced.Load(), Sockets: len(t.local), Pending: len(t.pending)}
}

// Run applies ops, renews this pod's lease, sweeps and announces until ctx
// is done. Then it records this pod's sockets as gone (they close with the
// server), leaves, and returns once queued announcements are delivered.
func (t *Tracker) Run(ctx context.Context) {
	stop, dispatched := make(chan struct{}), make(chan struct{})
	go func() { defer close(dispatched); t.dispatch(stop) }()

	t.healthySince = time.Now()
	t.heartbeat()
	beat := time.NewTicker(t.beat)
	defer beat.Stop()
	sweep := time.NewTicker(t.opts.SweepInterval)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			t.leave()
			close(stop)
			<-dispatched
			return
		case <-t.wake:
			t.flush()
		case <-beat.C:
			t.heartbeat()
		case <-sweep.C:
			t.sweep()
		case <-t.sweepRequests:
			t.sweep()
		}
	}
}

// call runs one store call of Run's under the timeout and keeps the health
// up to date: the first call that succeeds after failures re-asserts.
func (t *Tracker) call(what string, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), t.opts.Timeout)
	defer cancel()
	if err := f(ctx); err != nil {
		t.fail(what, err)
		return err
	}
	if t.unhealthy.CompareAndSwap(true, false) {
		t.healthySince = time.Now()
		t.log.Info("presence: store answers again; re-asserting this pod's sockets")
		t.mu.Lock()
		t.pending, t.dirty = nil, true
		t.mu.Unlock()
		t.signal()
	}
	return nil
}

func (t *Tracker) fail(what string, err error) {
	t.errors.Add(1)
	t.lastErr.Store(&err)
	if t.unhealthy.CompareAndSwap(false, true) {
		t.log.Warn("presence: store unreachable; sockets are tracked locally until it answers", "op", what, "err", err)
	} else {
		t.log.Debug("presence: store call failed", "op", what, "err", err)
	}
}

func (t *Tracker) signal() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// flush applies what is queued, or re-asserts this pod's sockets after ops were lost.
func (t *Tracker) flush() {
	for {
		t.mu.Lock()
		if t.dirty {
			t.mu.Unlock()
			if !t.unhealthy.Load() { // else the heartbeat that finds the store again re-asserts
				t.reassert()
			}
			return
		}
		n := min(len(t.pending), maxBatch)
		if n == 0 {
			t.mu.Unlock()
			return
		}
		ops := append([]Op(nil), t.pending[:n]...)
		t.pending = t.pending[n:]
		if len(t.pending) == 0 {
			t.pending = nil
		}
		t.mu.Unlock()
		if !t.apply(ops) {
			// The batch may or may not have been recorded: re-assert once
			// the store answers (ops are not retried blindly).
			t.mu.Lock()
			t.pending, t.dirty = nil, true
			t.mu.Unlock()
			return
		}
	}
}

func (t *Tracker) apply(ops []Op) bool {
	var changes []Change
	err := t.call("apply", func(ctx context.Context) error {
		var err error
		changes, err = t.store.Apply(ctx, t.pod, ops, t.opts.PodTTL, t.opts.Grace)
		return err
	})
	if err != nil {
		return false
	}
	t.announce(changes)
	return true
}

// reassert makes the store hold exactly this pod's sockets: what it misses
// is connected (announcing users it brings online), what it holds that is
// gone is disconnected. The snapshot is taken with the queue cut, so ops
// made meanwhile are applied after it, in order.
func (t *Tracker) reassert() {
	t.mu.Lock()
	snapshot := make(map[string]string, len(t.local))
	for s, u := range t.local {
		snapshot[s] = u
	}
	t.pending, t.dirty = nil, false
	t.mu.Unlock()

	var held map[string]string
	if err := t.call("sockets", func(ctx context.Context) error {
		var err error
		held, err = t.store.Sockets(ctx, t.pod)
		return err
	}); err != nil {
		t.markDirty()
		return
	}
	var ops []Op
	for s, u := range held {
		if snapshot[s] != u {
			ops = append(ops, Op{UserID: u, SocketID: s})
		}
	}
	for s, u := range snapshot {
		if held[s] != u {
			ops = append(ops, Op{Connect: true, UserID: u, SocketID: s})
		}
	}
	for len(ops) > 0 {
		n := min(len(ops), maxBatch)
		if !t.apply(ops[:n]) {
			t.markDirty()
			return
		}
		ops = ops[n:]
	}
	if len(held) > 0 || len(snapshot) > 0 {
		t.log.Info("presence: re-asserted this pod's sockets", "sockets", len(snapshot), "store_held", len(held))
	}
	t.signal() // ops queued meanwhile
}

func (t *Tracker) markDirty() {
	t.mu.Lock()
	t.pending, t.dirty = nil, true
	t.mu.Unlock()
}

// heartbeat renews the lease and checks that the store still holds what
// this pod has (a pod reaped while cut off, or a store that lost its data,
// holds less): if not, it re-asserts.
func (t *Tracker) heartbeat() {
	t.mu.Lock()
	quiet := len(t.pending) == 0 && !t.dirty
	want := len(t.local)
	t.mu.Unlock()
	var held int
	if err := t.call("heartbeat", func(ctx context.Context) error {
		var err error
		held, err = t.store.Heartbeat(ctx, t.pod, t.opts.PodTTL)
		return err
	}); err != nil {
		return
	}
	// Only Run applies this pod's ops, so with nothing queued the counts
	// agree unless someone else changed the record.
	if quiet && held != want {
		t.log.Info("presence: the store holds a different set of this pod's sockets; re-asserting", "store_held", held, "sockets", want)
		t.markDirty()
		t.signal()
	}
}

// sweep announces users whose grace is over. Dead pods are reaped only once
// this pod has been in touch with the store for two lease renewals: after an
// outage every live pod must have renewed its lease before anyone is judged dead.
func (t *Tracker) sweep() {
	reap := !t.unhealthy.Load() && time.Since(t.healthySince) >= 2*t.beat
	var offline []string
	var more bool
	if err := t.call("sweep", func(ctx context.Context) error {
		var err error
		offline, more, err = t.store.Sweep(ctx, reap, sweepLimit)
		return err
	}); err != nil {
		return
	}
	changes := make([]Change, len(offline))
	for i, u := range offline {
		changes[i] = Change{UserID: u}
	}
	t.announce(changes)
	if more {
		select {
		case t.sweepRequests <- struct{}{}:
		default:
		}
	}
}

// leave records this pod's remaining sockets as gone and drops its lease.
func (t *Tracker) leave() {
	t.mu.Lock()
	ops := make([]Op, 0, len(t.local))
	for s, u := range t.local {
		ops = append(ops, Op{UserID: u, SocketID: s})
	}
	t.local = map[string]string{}
	t.pending, t.dirty = nil, false
	t.mu.Unlock()
	// Sockets not recorded yet (ops still queued) are never found in the
	// store: disconnecting them is a no-op there.
	for len(ops) > 0 {
		n := min(len(ops), maxBatch)
		if !t.apply(ops[:n]) {
			return // the lease expires and a live pod reaps the rest
		}
		ops = ops[n:]
	}
	_ = t.call("leave", func(ctx context.Context) error { return t.store.Leave(ctx, t.pod) })
}

// announce queues changes for the handler.
func (t *Tracker) announce(changes []Change) {
	if len(changes) == 0 {
		return
	}
	t.changesMu.Lock()
	t.changes = append(t.changes, changes...)
	t.changesMu.Unlock()
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// dispatch hands changes to the handler in order until stop is closed and
// what was queued is delivered.
func (t *Tracker) dispatch(stop <-chan struct{}) {
	for {
		stopped := false
		select {
		case <-t.changed:
		case <-stop:
			stopped = true
		}
		for {
			t.changesMu.Lock()
			batch := t.changes
			t.changes = nil
			t.changesMu.Unlock()
			if len(batch) == 0 {
				break
			}
			for _, c := range batch {
				t.announced.Add(1)
				t.handler(c)
			}
		}
		if stopped {
			return
		}
	}
}

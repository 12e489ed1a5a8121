package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fitmate/commserver/gateway/socketio"
	"github.com/redis/go-redis/v9"
)

// Adapters is the Socket.IO cluster adapter over Redis Streams: one Adapter
// per namespace (For), sharing one publisher, one reader and one heartbeat
// per pod. Every broadcast and every operation on sockets (join, leave,
// disconnect, fetch, server-side emit, broadcast with acks) reaches every
// pod, each once, in the order each pod published them.
//
// How a broadcast travels: Broadcast encodes the packet once (socketio's
// AppendPacket) and queues an entry holding the encoded text and the
// attachments' bytes; one publisher goroutine pipelines the queued entries
// with XADD, in order, in batches. One reader goroutine XREADs every
// namespace's stream and delivers each entry to the local sockets from those
// bytes (socketio.BuildMessage, MemoryAdapter.Deliver) with its stream id as
// the recovery offset. A pod's own broadcasts reach its sockets through the
// reader too (see Adapter), so every pod delivers in stream order.
//
// Redis trouble never blocks a handler and never stops local delivery:
// while publishing fails, what a handler broadcasts is delivered to the
// local sockets at once and stays queued (bounded in entries and bytes; past
// the bound it is dropped and counted) until Redis answers, then published;
// the reader then skips those entries on this pod. The reader reconnects
// with backoff and resumes after the last entry it delivered, so a blip
// loses nothing that Redis kept.
//
// Keys (version 1, docs/cluster.md): <prefix>{sio:v1}:stream:<nsp> (the
// stream), <prefix>{sio:v1}:session:<nsp>:<pid> (a disconnected socket's
// session, with the recovery window as TTL), <prefix>{sio:v1}:pods (the pods
// alive, for the requests that collect answers).
type Adapters struct {
	opts AdapterOptions
	rdb  *redis.Client // short timeouts: publishing, sessions, heartbeat
	rd   *redis.Client // the reader's own connection (blocking XREAD)
	base string
	log  *slog.Logger

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	nsMu sync.Mutex
	nss  map[string]*Adapter // by stream key
	wake chan struct{}       // a namespace was added (for an idle reader)

	q      outQueue
	local  localRunner
	reqSeq atomic.Uint64
	reqs   sync.Map // request id → *request

	pods atomic.Pointer[[]string] // alive at the last heartbeat

	published, received, errs, dropped atomic.Uint64
	pubErr, readErr                    atomic.Pointer[error]
}

// AdapterOptions configure the adapters of a pod.
type AdapterOptions struct {
	// Prefix is CLUSTER_REDIS_PREFIX; Pod this process's pod id (unique).
	Prefix string
	Pod    string
	// RecoveryWindow is how long a disconnected socket's session and the
	// broadcasts it may miss are kept (SOCKET_RECOVERY_WINDOW); 0 turns
	// recovery off (no offsets, no sessions). The stream is trimmed to it.
	RecoveryWindow time.Duration
	// Timeout bounds each Redis call (CLUSTER_REDIS_TIMEOUT, default 1 s).
	Timeout time.Duration
	// RequestTimeout bounds how long FetchSockets and BroadcastWithAck wait
	// for the other pods' answers (default 5 s).
	RequestTimeout time.Duration
	// MaxStreamLength caps each stream (XADD MAXLEN ~; default 100,000),
	// whatever the window.
	MaxStreamLength int64
	// QueueLength and QueueBytes bound what waits to be published (defaults
	// 10,000 entries, 32 MiB); past them entries are dropped and counted.
	QueueLength int
	QueueBytes  int
	// MaxReplay bounds the stream entries a recovery reads (default
	// 20,000); a client that missed more gets a fresh session.
	MaxReplay int
	// Heartbeat is how often the pod renews its place in the pods set
	// (default 5 s); a pod is alive for three heartbeats.
	Heartbeat time.Duration
	// Block is how long the reader's XREAD waits (default 1 s).
	Block time.Duration
	Log   *slog.Logger
}

func (o AdapterOptions) withDefaults() AdapterOptions {
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 5 * time.Second
	}
	if o.MaxStreamLength <= 0 {
		o.MaxStreamLength = 100_000
	}
	if o.QueueLength <= 0 {
		o.QueueLength = 10_000
	}
	if o.QueueBytes <= 0 {
		o.QueueBytes = 32 << 20
	}
	if o.MaxReplay <= 0 {
		o.MaxReplay = 20_000
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 5 * time.Second
	}
	if o.Block <= 0 {
		o.Block = time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Pod == "" {
		o.Pod = "pod-" + strconv.FormatUint(rand.Uint64(), 36)
	}
	return o
}

// AdapterStats are the adapters' counters, for metrics.
type AdapterStats struct {
	Published   uint64 // entries written to Redis
	Received    uint64 // entries read from Redis (every pod's, this one's too)
	Errors      uint64 // failed Redis calls (publishing, reading, sessions, heartbeat)
	Dropped     uint64 // entries dropped: the publish queue was full
	Queued      int    // entries waiting to be published
	QueuedBytes int    // about what they weigh
}

// ErrMissingPods is returned (wrapped) by FetchSockets when some pods did
// not answer within the request timeout; what the others answered is
// returned with it.
var ErrMissingPods = errors.New("cluster adapter: pods did not answer")

// AdapterBase is the start of every adapter key under prefix.
func AdapterBase(prefix string) string {
	return prefix + "{sio:v" + strconv.Itoa(KeyLayoutVersion) + "}:"
}

// NewAdapters starts the adapters of this pod over rdb (a client from
// NewClient, with short timeouts; the reader opens a connection of its own
// with the same options). Close stops them; rdb stays the caller's.
func NewAdapters(rdb *redis.Client, opts AdapterOptions) *Adapters {
	opts = opts.withDefaults()
	o := rdb.Options()
	ro := redis.Options{Network: o.Network, Addr: o.Addr, Dialer: o.Dialer, Protocol: o.Protocol,
		Username: o.Username, Password: o.Password, CredentialsProvider: o.CredentialsProvider, DB: o.DB,
		TLSConfig: o.TLSConfig, DialTimeout: o.DialTimeout, WriteTimeout: o.WriteTimeout,
		ReadTimeout: opts.Block + opts.Timeout, PoolTimeout: o.PoolTimeout, PoolSize: 2, MaxRetries: -1,
		ClientName: "fitmate-commserver-adapter-reader"}
	ctx, cancel := context.WithCancel(context.Background())
	a := &Adapters{
		opts: opts, rdb: rdb, rd: redis.NewClient(&ro), base: AdapterBase(opts.Prefix),
		log: opts.Log.With("pod", opts.Pod), ctx: ctx, cancel: cancel,
		nss: make(map[string]*Adapter), wake: make(chan struct{}, 1),
	}
	a.q.init(opts.QueueLength, opts.QueueBytes)
	a.local.init()
	a.pods.Store(&[]string{})
	a.heartbeat()
	a.wg.Add(5)
	go func() { defer a.wg.Done(); a.liveLoop() }()
	go func() { defer a.wg.Done(); a.publishLoop() }()
	go func() { defer a.wg.Done(); a.readLoop() }()
	go func() { defer a.wg.Done(); a.heartbeatLoop() }()
	go func() { defer a.wg.Done(); a.local.run(ctx) }()
	return a
}

// For makes the adapter of a namespace (socketio.Options.Adapter).
func (a *Adapters) For(nsp *socketio.Namespace) socketio.Adapter {
	ad := &Adapter{
		MemoryAdapter: socketio.NewMemoryAdapter(nsp), all: a, nsp: nsp,
		key: a.base + "stream:" + nsp.Name(), lastSeq: make(map[string]uint64),
	}
	ad.mark.Store(new(string))
	ad.live.init()
	// Start reading after the stream's current end, now: what this pod
	// publishes from here on is read back (and delivered) by the reader.
	if id, err := a.lastID(ad.key); err == nil {
		ad.mark.Store(&id)
	}
	a.nsMu.Lock()
	a.nss[ad.key] = ad
	a.nsMu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
	return ad
}

// lastID is the newest id of a stream ("0-0" when it is empty or absent).
func (a *Adapters) lastID(key string) (string, error) {
	ctx, cancel := context.WithTimeout(a.ctx, a.opts.Timeout)
	defer cancel()
	msgs, err := a.rdb.XRevRangeN(ctx, key, "+", "-", 1).Result()
	if err != nil {
		a.errs.Add(1)
		return "", err
	}
	if len(msgs) == 0 {
		return "0-0", nil
	}
	return msgs[0].ID, nil
}

// Health is nil while publishing and reading work, else the last error.
func (a *Adapters) Health() error {
	if p := a.pubErr.Load(); p != nil {
		return fmt.Errorf("cluster adapter publishing: %w", *p)
	}
	if p := a.readErr.Load(); p != nil {
		return fmt.Errorf("cluster adapter reading: %w", *p)
	}
	return nil
}

// Stats returns the adapters' counters.
func (a *Adapters) Stats() AdapterStats {
	n, b := a.q.size()
	return AdapterStats{Published: a.published.Load(), Received: a.received.Load(), Errors: a.errs.Load(),
		Dropped: a.dropped.Load(), Queued: n, QueuedBytes: b}
}

// Pods lists the pods alive at the last heartbeat (this one included when
// Redis answered), whose answers FetchSockets and BroadcastWithAck wait for.
func (a *Adapters) Pods() []string { return *a.pods.Load() }

// Close stops the goroutines after one last attempt (within the timeout)
// to publish what is queued, and leaves the pods set.
func (a *Adapters) Close() error {
	a.cancel()
	a.q.signal()
	err := a.rd.Close() // ends a blocked XREAD
	a.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), a.opts.Timeout)
	defer cancel()
	if batch := a.q.peek(1 << 30); len(batch) > 0 {
		n, _ := a.send(ctx, batch)
		a.q.pop(n)
	}
	a.rdb.ZRem(ctx, a.base+"pods", a.opts.Pod)
	return err
}

// expectedPeers is how many other pods should answer a request.
func (a *Adapters) expectedPeers() int {
	n := 0
	for _, p := range *a.pods.Load() {
		if p != a.opts.Pod {
			n++
		}
	}
	return n
}

var adapterPodsScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)`)

// heartbeat renews this pod in the pods set and reads who is alive.
func (a *Adapters) heartbeat() {
	ctx, cancel := context.WithTimeout(a.ctx, a.opts.Timeout)
	defer cancel()
	pods, err := adapterPodsScript.Run(ctx, a.rdb, []string{a.base + "pods"}, a.opts.Pod,
		(3 * a.opts.Heartbeat).Milliseconds()).StringSlice()
	if err != nil {
		a.errs.Add(1)
		return
	}
	a.pods.Store(&pods)
}

func (a *Adapters) heartbeatLoop() {
	t := time.NewTicker(a.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
			a.heartbeat()
		}
	}
}

// ---- publishing ----

// outItem is what waits to be published: a stream entry (with what to do
// locally at once if it cannot be published), or a session to store.
type outItem struct {
	ns    *Adapter
	e     entry
	local func() // the local part, run at once while Redis is down (nil: none)
	done  bool   // the local part ran: the reader skips the entry here

	sessKey string // a session SET instead of an entry
	sessVal []byte
	sessTTL time.Duration // 0: the recovery window
	sessDel bool          // a DEL of sessKey instead
}

func (it *outItem) size() int {
	if it.sessKey != "" {
		return 64 + len(it.sessKey) + len(it.sessVal)
	}
	return it.e.size()
}

// outQueue is the bounded FIFO of what waits to be published, and the
// record of entries whose local part already ran (by seq).
type outQueue struct {
	mu        sync.Mutex
	items     []*outItem
	head      int
	bytes     int
	maxN      int
	maxBytes  int
	seq       uint64
	down      bool
	localDone map[uint64]struct{}
	ready     chan struct{}
}

func (q *outQueue) init(maxN, maxBytes int) {
	q.maxN, q.maxBytes = maxN, maxBytes
	q.localDone = make(map[uint64]struct{})
	q.ready = make(chan struct{}, 1)
}

func (q *outQueue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *outQueue) size() (int, int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) - q.head, q.bytes
}

func (q *outQueue) peek(max int) []*outItem {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(max, len(q.items)-q.head)
	return append([]*outItem(nil), q.items[q.head:q.head+n]...)
}

func (q *outQueue) pop(n int) {
	if n == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := q.head; i < q.head+n; i++ {
		q.bytes -= q.items[i].size()
		q.items[i] = nil
	}
	q.head += n
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	} else if q.head > 1024 && q.head*2 > len(q.items) {
		k := copy(q.items, q.items[q.head:])
		clear(q.items[k:])
		q.items, q.head = q.items[:k], 0
	}
}

// tookLocal reports (once) whether the local part of this pod's entry seq
// already ran, so the reader does not run it again.
func (q *outQueue) tookLocal(seq uint64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.localDone[seq]; ok {
		delete(q.localDone, seq)
		return true
	}
	return false
}

// enqueue queues an item for the publisher. It never blocks: while Redis is
// down the item's local part runs at once (in order, on the local runner);
// past the queue's bounds the item is dropped, its local part still run.
func (a *Adapters) enqueue(it *outItem) {
	q := &a.q
	q.mu.Lock()
	q.seq++
	it.e.Seq = q.seq
	it.e.From = a.opts.Pod
	sz := it.size()
	if len(q.items)-q.head >= q.maxN || q.bytes+sz > q.maxBytes {
		q.mu.Unlock()
		a.dropped.Add(1)
		if it.local != nil {
			a.local.push(it.local)
		}
		return
	}
	if q.down && it.local != nil {
		it.done = true
		q.localDone[it.e.Seq] = struct{}{}
		a.local.push(it.local)
	}
	q.items = append(q.items, it)
	q.bytes += sz
	q.mu.Unlock()
	q.signal()
}

// setDown records that publishing fails: every queued entry whose local
// part has not run gets it run now, in queue order, and so will every entry
// queued until publishing works again.
func (a *Adapters) setDown(err error) {
	q := &a.q
	q.mu.Lock()
	if !q.down {
		a.log.Warn("cluster adapter: publishing to Redis failed; delivering locally and queueing", "err", err)
	}
	q.down = true
	for _, it := range q.items[q.head:] {
		if it.local != nil && !it.done {
			it.done = true
			q.localDone[it.e.Seq] = struct{}{}
			a.local.push(it.local)
		}
	}
	q.mu.Unlock()
	a.pubErr.Store(&err)
}

// publishingDown reports whether publishing fails now.
func (a *Adapters) publishingDown() bool {
	a.q.mu.Lock()
	defer a.q.mu.Unlock()
	return a.q.down
}

func (a *Adapters) setUp() {
	q := &a.q
	q.mu.Lock()
	if q.down {
		a.log.Info("cluster adapter: publishing to Redis again", "queued", len(q.items)-q.head)
	}
	q.down = false
	q.mu.Unlock()
	a.pubErr.Store(nil)
}

const publishBatch = 256

func (a *Adapters) publishLoop() {
	backoff := backoffStart
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-a.q.ready:
		}
		for a.ctx.Err() == nil {
			batch := a.q.peek(publishBatch)
			if len(batch) == 0 {
				break
			}
			ctx, cancel := context.WithTimeout(a.ctx, a.opts.Timeout)
			n, err := a.send(ctx, batch)
			cancel()
			a.q.pop(n)
			if err != nil {
				if a.ctx.Err() != nil {
					return
				}
				a.errs.Add(1)
				a.setDown(err)
				if !sleepCtx(a.ctx, jitter(backoff)) {
					return
				}
				backoff = min(2*backoff, backoffMax)
				continue
			}
			backoff = backoffStart
			a.setUp()
		}
	}
}

// send writes a batch in one pipeline; it returns how many items of its
// start were written (those are done, even when a later one failed).
func (a *Adapters) send(ctx context.Context, batch []*outItem) (int, error) {
	pipe := a.rdb.Pipeline()
	cmds := make([]redis.Cmder, len(batch))
	streams := make(map[string]bool)
	for i, it := range batch {
		if it.sessKey != "" {
			switch ttl := it.sessTTL; {
			case it.sessDel:
				cmds[i] = pipe.Del(ctx, it.sessKey)
			case ttl > 0:
				cmds[i] = pipe.Set(ctx, it.sessKey, it.sessVal, ttl)
			default:
				cmds[i] = pipe.Set(ctx, it.sessKey, it.sessVal, a.opts.RecoveryWindow)
			}
			continue
		}
		cmds[i] = pipe.XAdd(ctx, &redis.XAddArgs{Stream: it.ns.key, MaxLen: a.opts.MaxStreamLength, Approx: true,
			Values: it.e.fields()})
		streams[it.ns.key] = true
	}
	if w := a.opts.RecoveryWindow; w > 0 {
		// Trim by time (what recovery may replay); XADD's MAXLEN is the hard cap.
		minID := strconv.FormatInt(time.Now().Add(-w).UnixMilli(), 10) + "-0"
		for key := range streams {
			pipe.XTrimMinIDApprox(ctx, key, minID, 0)
		}
	}
	_, err := pipe.Exec(ctx)
	n := 0
	for n < len(cmds) && cmds[n].Err() == nil {
		n++
	}
	a.published.Add(uint64(n))
	if n == len(cmds) {
		if err != nil {
			a.errs.Add(1) // a trim failed: harmless, the next batch trims
		}
		return n, nil
	}
	return n, cmds[n].Err()
}

// localRunner runs local parts in the order they were pushed, off the
// callers' locks (a local disconnect may persist a session: enqueue).
type localRunner struct {
	mu    sync.Mutex
	fns   []func()
	ready chan struct{}
}

func (l *localRunner) init() { l.ready = make(chan struct{}, 1) }

func (l *localRunner) push(fn func()) {
	l.mu.Lock()
	l.fns = append(l.fns, fn)
	l.mu.Unlock()
	select {
	case l.ready <- struct{}{}:
	default:
	}
}

func (l *localRunner) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.ready:
		}
		for {
			l.mu.Lock()
			fns := l.fns
			l.fns = nil
			l.mu.Unlock()
			if len(fns) == 0 {
				break
			}
			for _, fn := range fns {
				fn()
			}
		}
	}
}

// ---- reading ----

const (
	backoffStart = 50 * time.Millisecond
	backoffMax   = 2 * time.Second
	readCount    = 512
)

func (a *Adapters) readLoop() {
	backoff := backoffStart
	fail := func(err error) bool {
		if a.ctx.Err() != nil {
			return false
		}
		a.errs.Add(1)
		if a.readErr.Swap(&err) == nil {
			a.log.Warn("cluster adapter: reading from Redis failed; retrying", "err", err)
		}
		ok := sleepCtx(a.ctx, jitter(backoff))
		backoff = min(2*backoff, backoffMax)
		return ok
	}
	for a.ctx.Err() == nil {
		a.nsMu.Lock()
		nss := make([]*Adapter, 0, len(a.nss))
		for _, ns := range a.nss {
			nss = append(nss, ns)
		}
		a.nsMu.Unlock()
		if len(nss) == 0 {
			select {
			case <-a.ctx.Done():
				return
			case <-a.wake:
			}
			continue
		}
		args := make([]string, 2*len(nss))
		var initErr error
		for i, ns := range nss {
			args[i] = ns.key
			id := *ns.mark.Load()
			if id == "" { // For could not read the stream's end: start there now.
				if id, initErr = a.lastID(ns.key); initErr != nil {
					break
				}
				ns.mark.Store(&id)
			}
			args[len(nss)+i] = id
		}
		if initErr != nil {
			if !fail(initErr) {
				return
			}
			continue
		}
		res, err := a.rd.XRead(a.ctx, &redis.XReadArgs{Streams: args, Count: readCount, Block: a.opts.Block}).Result()
		if errors.Is(err, redis.Nil) {
			err = nil
		}
		if err != nil {
			if !fail(err) {
				return
			}
			continue
		}
		if a.readErr.Swap(nil) != nil {
			a.log.Info("cluster adapter: reading from Redis again")
		}
		backoff = backoffStart
		for _, st := range res {
			a.nsMu.Lock()
			ns := a.nss[st.Stream]
			a.nsMu.Unlock()
			if ns != nil {
				a.received.Add(uint64(len(st.Messages)))
				ns.deliverBatch(st.Messages)
			}
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// ---- requests (FetchSockets, BroadcastWithAck) ----

// request collects the other pods' answers to one request. The pods
// expected are those alive at the last heartbeat (Pods): a pod that came
// up since answers too and is counted; one that died without leaving the
// set makes the request wait for its timeout.
type request struct {
	mu       sync.Mutex
	answered map[string]bool
	expected int
	done     chan struct{}
	onReply  func(e *entry) // under mu
	onAck    func(args []any)
}

func (a *Adapters) newRequest(expected int, onReply func(e *entry), onAck func([]any)) (string, *request) {
	id := a.opts.Pod + ":" + strconv.FormatUint(a.reqSeq.Add(1), 36)
	r := &request{answered: make(map[string]bool), expected: expected, done: make(chan struct{}),
		onReply: onReply, onAck: onAck}
	if expected == 0 {
		close(r.done)
	}
	a.reqs.Store(id, r)
	return id, r
}

// reply routes an answer addressed to this pod to its request.
func (a *Adapters) reply(e *entry) {
	v, ok := a.reqs.Load(e.Req)
	if !ok {
		return
	}
	r := v.(*request)
	if e.Kind == kindAck {
		if r.onAck != nil {
			if args, err := decodeArgs(e.Text, e.Bins); err == nil {
				r.onAck(args)
			}
		}
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.answered[e.From] {
		return
	}
	r.answered[e.From] = true
	r.onReply(e)
	if len(r.answered) == r.expected {
		close(r.done)
	}
}

// wait waits for every expected pod's answer or the timeout; it reports how
// many answered.
func (r *request) wait(ctx context.Context, timeout time.Duration) int {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-r.done:
	case <-ctx.Done():
	case <-t.C:
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.answered)
}

// encodeArgs encodes a list of values (binary included) as a Socket.IO
// ACK packet's text and attachments ("30[...]"), the form server-emit and
// ack entries carry them in.
func encodeArgs(args []any) ([]byte, [][]byte, error) {
	if args == nil {
		args = []any{}
	}
	return socketio.AppendPacket(nil, &socketio.Packet{Type: socketio.PacketAck, HasID: true, Data: args})
}

func decodeArgs(text []byte, bins [][]byte) ([]any, error) {
	p, err := socketio.DecodePacket(text, len(bins))
	if err != nil {
		return nil, err
	}
	data, err := socketio.Reconstruct(p.Data, bins)
	if err != nil {
		return nil, err
	}
	args, _ := data.([]any)
	return args, nil
}

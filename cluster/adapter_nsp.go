package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fitmate/commserver/gateway/socketio"
	"github.com/fitmate/commserver/gateway/socketio/engine"
	"github.com/redis/go-redis/v9"
)

// Adapter is one namespace's cluster adapter (Adapters.For). It embeds the
// namespace's MemoryAdapter for the local rooms and the encode-once local
// delivery.
//
// How this pod's own broadcasts reach its own sockets: through the stream,
// like everyone else's. Broadcast only queues the entry; the reader
// delivers it here when it reads it back, with its stream id as offset. So
// every pod delivers every entry in stream order, the offset a client holds
// is always the id of the newest entry it got, and one watermark (the id of
// the last entry the reader handled here, Offset) separates what a restore
// must replay (ids ≤ watermark, read with XRANGE) from what live delivery
// will bring (ids > watermark): the reader handles a batch holding deliverMu,
// and a restore joins the socket holding it, so nothing falls between and
// nothing comes twice. The same holds for SocketsJoin, SocketsLeave and
// DisconnectSockets: applied here in stream order too, so a leave queued
// after a broadcast never takes the socket out before that broadcast. The
// price is one round trip to Redis before local delivery. While publishing
// fails, the local part runs at once instead, and the reader skips the entry
// when it reads it back after the outage.
type Adapter struct {
	*socketio.MemoryAdapter
	all *Adapters
	nsp *socketio.Namespace
	key string

	// deliverMu is held by the reader while it handles a batch and by a
	// restore while it joins its socket.
	deliverMu sync.Mutex
	mark      atomic.Pointer[string] // watermark: the last entry id handled here ("" not known yet)
	lastSeq   map[string]uint64      // per publishing pod, the last seq handled (drops a retried duplicate)

	live liveSessions // the sessions of this pod's connected sockets (adapter_live.go)
}

var _ socketio.Adapter = (*Adapter)(nil)

func (a *Adapter) recovery() bool { return a.all.opts.RecoveryWindow > 0 }

// Broadcast implements socketio.Adapter.
func (a *Adapter) Broadcast(p *socketio.Packet, opts socketio.BroadcastOptions) error {
	text, atts, err := socketio.AppendPacket(make([]byte, 0, 64), p)
	if err != nil {
		return err
	}
	local := func() { a.Deliver(socketio.BuildMessage(text, "", atts), opts) }
	if opts.Flags.Local {
		local()
		return nil
	}
	a.all.enqueue(&outItem{ns: a, local: local, e: entry{Kind: kindBroadcast, Rooms: opts.Rooms, Except: opts.Except,
		Volatile: opts.Flags.Volatile, Text: text, Bins: atts}})
	return nil
}

// BroadcastWithAck implements socketio.Adapter: clientCount is called once,
// with the sockets reached on every pod that answered within the flags'
// Timeout (or AdapterOptions.RequestTimeout); the answers come as they come,
// until that time.
func (a *Adapter) BroadcastWithAck(p *socketio.Packet, opts socketio.BroadcastOptions, clientCount func(int), ack func([]any)) error {
	peers := a.all.expectedPeers()
	if opts.Flags.Local || peers == 0 {
		return a.MemoryAdapter.BroadcastWithAck(p, opts, clientCount, ack)
	}
	text, atts, err := socketio.AppendPacket(make([]byte, 0, 64), p)
	if err != nil {
		return err
	}
	var remote int
	req, r := a.all.newRequest(peers, func(e *entry) { remote += e.Count }, ack)
	local := 0
	if err := a.MemoryAdapter.BroadcastWithAck(p, opts, func(n int) { local = n }, ack); err != nil {
		a.all.reqs.Delete(req)
		return err
	}
	a.all.enqueue(&outItem{ns: a, e: entry{Kind: kindBroadcastAck, Req: req, Rooms: opts.Rooms, Except: opts.Except,
		Volatile: opts.Flags.Volatile, Text: text, Bins: atts}})
	timeout := a.all.opts.RequestTimeout
	if opts.Flags.Timeout > 0 {
		timeout = opts.Flags.Timeout
	}
	go func() {
		start := time.Now()
		r.wait(context.Background(), timeout)
		r.mu.Lock()
		n := local + remote
		r.mu.Unlock()
		clientCount(n)
		// Answers keep coming until the broadcast's timeout.
		time.Sleep(timeout - time.Since(start))
		a.all.reqs.Delete(req)
	}()
	return nil
}

// FetchSockets implements socketio.Adapter: the local sockets and those
// every other pod describes. A pod that does not answer within ctx and
// RequestTimeout is missing from the list, and the error wraps
// ErrMissingPods.
func (a *Adapter) FetchSockets(ctx context.Context, opts socketio.BroadcastOptions) ([]socketio.RemoteSocket, error) {
	out, _ := a.MemoryAdapter.FetchSockets(ctx, opts)
	peers := a.all.expectedPeers()
	if opts.Flags.Local || peers == 0 {
		return out, nil
	}
	var remote []socketio.RemoteSocket
	req, r := a.all.newRequest(peers, func(e *entry) {
		for _, s := range e.Sockets {
			var data any
			if len(s.Data) > 0 {
				_ = json.Unmarshal(s.Data, &data)
			}
			remote = append(remote, socketio.NewRemoteSocket(a.nsp, s.ID, s.Rooms, data, s.Address))
		}
	}, nil)
	defer a.all.reqs.Delete(req)
	a.all.enqueue(&outItem{ns: a, e: entry{Kind: kindFetch, Req: req, Rooms: opts.Rooms, Except: opts.Except}})
	got := r.wait(ctx, a.all.opts.RequestTimeout)
	r.mu.Lock()
	out = append(out, remote...)
	r.mu.Unlock()
	if got < peers {
		return out, fmt.Errorf("%w: %d of %d answered", ErrMissingPods, got, peers)
	}
	return out, nil
}

// AddSockets implements socketio.Adapter.
func (a *Adapter) AddSockets(opts socketio.BroadcastOptions, rooms []string) error {
	return a.operate(kindJoin, opts, rooms, false, func() { _ = a.MemoryAdapter.AddSockets(opts, rooms) })
}

// DelSockets implements socketio.Adapter.
func (a *Adapter) DelSockets(opts socketio.BroadcastOptions, rooms []string) error {
	return a.operate(kindLeave, opts, rooms, false, func() { _ = a.MemoryAdapter.DelSockets(opts, rooms) })
}

// DisconnectSockets implements socketio.Adapter.
func (a *Adapter) DisconnectSockets(opts socketio.BroadcastOptions, close bool) error {
	return a.operate(kindDisconnect, opts, nil, close, func() { _ = a.MemoryAdapter.DisconnectSockets(opts, close) })
}

func (a *Adapter) operate(kind string, opts socketio.BroadcastOptions, target []string, close bool, local func()) error {
	if opts.Flags.Local {
		local()
		return nil
	}
	if target == nil && kind != kindDisconnect {
		target = []string{}
	}
	a.all.enqueue(&outItem{ns: a, local: local, e: entry{Kind: kind, Rooms: opts.Rooms, Except: opts.Except,
		Target: target, Close: close}})
	return nil
}

// ServerSideEmit implements socketio.Adapter: the other pods' handlers run
// (Namespace.OnServerSideEvent); the arguments may hold []byte.
func (a *Adapter) ServerSideEmit(event string, args []any) error {
	text, atts, err := encodeArgs(append([]any{event}, args...))
	if err != nil {
		return err
	}
	a.all.enqueue(&outItem{ns: a, e: entry{Kind: kindServerEmit, Text: text, Bins: atts}})
	return nil
}

// Offset implements socketio.Adapter: the id of the newest entry handled here.
func (a *Adapter) Offset() string {
	if !a.recovery() {
		return ""
	}
	if m := *a.mark.Load(); m != "0-0" {
		return m
	}
	return ""
}

// PersistSession implements socketio.Adapter: the session is stored in
// Redis (through the publish queue: it never blocks) for the recovery
// window, for any pod to restore. Data goes as JSON (a value that does not
// marshal is stored as null); a restored socket gets it back as decoded JSON
// (maps, slices, float64), so middleware that runs again should set it anew.
func (a *Adapter) PersistSession(s socketio.SessionToPersist) {
	if !a.recovery() {
		return
	}
	data, err := json.Marshal(s.Data)
	if err != nil {
		data = nil
	}
	val, _ := json.Marshal(storedSession{V: KeyLayoutVersion, SID: s.SID, PID: s.PID, Rooms: s.Rooms, Data: data})
	a.persisting(s.PID, func() { a.all.enqueue(&outItem{ns: a, sessKey: a.sessionKey(s.PID), sessVal: val}) })
}

func (a *Adapter) sessionKey(pid string) string {
	return a.all.base + "session:" + a.nsp.Name() + ":" + pid
}

// RestoreSession implements socketio.Adapter, on any pod: it takes the
// session (GETDEL: once), checks that nothing after offset was trimmed,
// reads the missed broadcasts with XRANGE outside any lock, then, holding
// deliverMu, tops them up to the watermark and joins the socket (see
// Adapter). A reader behind the client's offset (the client came from a pod
// that read further) is waited for, up to the timeout.
func (a *Adapter) RestoreSession(s *socketio.Socket, pid, offset string) (*socketio.Session, error) {
	if !a.recovery() {
		return nil, nil
	}
	o := &a.all.opts
	tctx, tcancel := context.WithTimeout(context.Background(), o.Timeout)
	raw, err := a.all.rdb.GetDel(tctx, a.sessionKey(pid)).Bytes()
	tcancel()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		a.all.errs.Add(1)
		return nil, fmt.Errorf("cluster adapter: take session: %w", err)
	}
	var st storedSession
	if err := json.Unmarshal(raw, &st); err != nil || st.V != KeyLayoutVersion {
		return nil, nil
	}
	if st.Live && !a.mayRestoreLive(st.Pod) {
		// Its socket may still be connected (adapter_live.go): put the
		// session back for a later crash of its pod, unless rewritten since.
		pctx, pcancel := context.WithTimeout(context.Background(), o.Timeout)
		a.all.rdb.SetNX(pctx, a.sessionKey(pid), raw, o.RecoveryWindow+a.all.liveRefresh())
		pcancel()
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*o.Timeout)
	defer cancel()
	off, ok := parseStreamID(offset)
	if !ok {
		return nil, nil
	}
	info, err := a.all.rdb.XInfoStream(ctx, a.key).Result()
	if err != nil {
		if !errors.Is(err, redis.Nil) && !isNoSuchKey(err) {
			a.all.errs.Add(1)
		}
		return nil, nil
	}
	if !offsetKept(off, info) {
		return nil, nil
	}
	sess := &socketio.Session{SessionToPersist: socketio.SessionToPersist{SID: st.SID, PID: st.PID, Rooms: st.Rooms}}
	if len(st.Data) > 0 {
		_ = json.Unmarshal(st.Data, &sess.Data)
	}
	rp := replay{rooms: st.Rooms, seen: make(map[string]uint64), max: o.MaxReplay}
	if err := rp.scan(ctx, a, off, streamID{^uint64(0), ^uint64(0)}); err != nil {
		return nil, nil
	}
	// The reader must have handled the client's offset, or live delivery
	// would bring what the client already has.
	for {
		if m, ok := parseStreamID(*a.mark.Load()); ok && !m.less(off) {
			break
		}
		if !sleepCtx(ctx, 5*time.Millisecond) {
			return nil, nil
		}
	}
	a.deliverMu.Lock()
	defer a.deliverMu.Unlock()
	mark, _ := parseStreamID(*a.mark.Load())
	rp.cut(mark) // past the watermark: live delivery brings those
	if rp.last.less(mark) {
		if err := rp.scan(ctx, a, rp.last, mark); err != nil {
			return nil, nil
		}
	}
	a.Restore(s, &sess.SessionToPersist)
	sess.Missed = rp.msgs
	a.touch(s) // live again, here
	return sess, nil
}

// offsetKept reports whether every entry after off is still in the stream:
// off was given out (not past the last id), and trimming (which removes the
// oldest entries) has not reached past it — off is at or after the first
// entry kept, or the stream is empty and off is its last id. An XDEL past
// off (max-deleted-entry-id, Redis 7) fails it too. Conservative: a client
// whose offset entry was trimmed with nothing after it lost gets a fresh
// session all the same.
func offsetKept(off streamID, info *redis.XInfoStream) bool {
	last, ok := parseStreamID(info.LastGeneratedID)
	if !ok || last.less(off) {
		return false
	}
	if deleted, ok := parseStreamID(info.MaxDeletedEntryID); ok && off.less(deleted) {
		return false
	}
	if info.Length == 0 {
		return off == last
	}
	first, ok := parseStreamID(info.FirstEntry.ID)
	return ok && !off.less(first)
}

func isNoSuchKey(err error) bool {
	return err != nil && (err.Error() == "ERR no such key")
}

// replay gathers the broadcasts a restored session missed.
type replay struct {
	rooms []string
	seen  map[string]uint64 // per pod, the last seq taken
	max   int
	read  int
	last  streamID // the last id read
	msgs  []*engine.Message
	ids   []streamID
}

var errReplayTooLong = errors.New("cluster adapter: too much missed")

// scan reads the entries in (after, upTo] and keeps the broadcasts the
// session was selected for.
func (r *replay) scan(ctx context.Context, a *Adapter, after, upTo streamID) error {
	r.last = after
	end := "+"
	if upTo.ms != ^uint64(0) {
		end = upTo.String()
	}
	for {
		msgs, err := a.all.rdb.XRangeN(ctx, a.key, "("+r.last.String(), end, 1000).Result()
		if err != nil {
			a.all.errs.Add(1)
			return err
		}
		for _, m := range msgs {
			id, _ := parseStreamID(m.ID)
			r.last = id
			r.read++
			e, err := decodeEntry(m.Values)
			if err != nil || e.Kind != kindBroadcast || e.Volatile {
				continue
			}
			if e.Seq <= r.seen[e.From] {
				continue
			}
			r.seen[e.From] = e.Seq
			if !socketio.SessionIncludes(r.rooms, e.Rooms, e.Except) {
				continue
			}
			r.msgs = append(r.msgs, socketio.BuildMessage(e.Text, m.ID, e.Bins))
			r.ids = append(r.ids, id)
		}
		if r.read > r.max {
			return errReplayTooLong
		}
		if len(msgs) < 1000 {
			return nil
		}
	}
}

// cut drops what was read past mark.
func (r *replay) cut(mark streamID) {
	k := len(r.ids)
	for k > 0 && mark.less(r.ids[k-1]) {
		k--
	}
	r.msgs, r.ids = r.msgs[:k], r.ids[:k]
	if mark.less(r.last) {
		r.last = mark
	}
}

// Close implements socketio.Adapter: the namespace stops being read.
func (a *Adapter) Close() error {
	a.all.nsMu.Lock()
	if a.all.nss[a.key] == a {
		delete(a.all.nss, a.key)
	}
	a.all.nsMu.Unlock()
	return a.MemoryAdapter.Close()
}

// deliverBatch handles entries the reader read, in order, holding deliverMu.
func (a *Adapter) deliverBatch(msgs []redis.XMessage) {
	a.deliverMu.Lock()
	defer a.deliverMu.Unlock()
	// One write per connection for the whole batch.
	a.nsp.Server().Batch(func() { a.deliverLocked(msgs) })
}

func (a *Adapter) deliverLocked(msgs []redis.XMessage) {
	for i := range msgs {
		m := &msgs[i]
		if e, err := decodeEntry(m.Values); err == nil && e.Seq > a.lastSeq[e.From] {
			a.lastSeq[e.From] = e.Seq
			a.handle(m.ID, &e)
		}
		id := m.ID
		a.mark.Store(&id)
	}
}

// handle acts on one entry (the reader's goroutine, deliverMu held).
func (a *Adapter) handle(id string, e *entry) {
	all := a.all
	own := e.From == all.opts.Pod
	opts := socketio.BroadcastOptions{Rooms: e.Rooms, Except: e.Except, Flags: socketio.BroadcastFlags{Volatile: e.Volatile}}
	switch e.Kind {
	case kindBroadcast:
		if own && all.q.tookLocal(e.Seq) {
			return
		}
		off := ""
		if a.recovery() && !e.Volatile {
			off = id
		}
		a.Deliver(socketio.BuildMessage(e.Text, off, e.Bins), opts)
	case kindJoin, kindLeave, kindDisconnect:
		if own && all.q.tookLocal(e.Seq) {
			return
		}
		switch e.Kind {
		case kindJoin:
			_ = a.MemoryAdapter.AddSockets(opts, e.Target)
		case kindLeave:
			_ = a.MemoryAdapter.DelSockets(opts, e.Target)
		default:
			_ = a.MemoryAdapter.DisconnectSockets(opts, e.Close)
		}
	case kindBroadcastAck:
		if own {
			return
		}
		p, err := socketio.DecodePacket(e.Text, len(e.Bins))
		if err != nil {
			return
		}
		if p.Data, err = socketio.Reconstruct(p.Data, e.Bins); err != nil {
			return
		}
		p.Type, p.Attachments, p.ID, p.HasID = socketio.PacketEvent, 0, a.nsp.NextAckID(), true
		from, req := e.From, e.Req
		_ = a.MemoryAdapter.BroadcastWithAck(&p, opts, func(n int) {
			all.enqueue(&outItem{ns: a, e: entry{Kind: kindAckCount, To: from, Req: req, Count: n}})
		}, func(args []any) {
			text, atts, err := encodeArgs(args)
			if err == nil {
				all.enqueue(&outItem{ns: a, e: entry{Kind: kindAck, To: from, Req: req, Text: text, Bins: atts}})
			}
		})
	case kindFetch:
		if own {
			return
		}
		socks, _ := a.MemoryAdapter.FetchSockets(context.Background(), opts)
		infos := make([]socketInfo, 0, len(socks))
		for _, s := range socks {
			data, _ := json.Marshal(s.Data)
			infos = append(infos, socketInfo{ID: s.ID, Rooms: s.Rooms, Data: data, Address: s.Address})
		}
		all.enqueue(&outItem{ns: a, e: entry{Kind: kindFetchReply, To: e.From, Req: e.Req, Sockets: infos}})
	case kindServerEmit:
		if own {
			return
		}
		args, err := decodeArgs(e.Text, e.Bins)
		if err != nil || len(args) == 0 {
			return
		}
		if event, ok := args[0].(string); ok {
			a.nsp.HandleServerSideEvent(event, args[1:])
		}
	case kindAckCount, kindAck, kindFetchReply:
		if e.To == all.opts.Pod {
			all.reply(e)
		}
	}
}

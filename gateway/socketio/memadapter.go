package socketio

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fitmate/commserver/gateway/socketio/engine"
)

// MemoryAdapter is the in-memory Adapter: rooms of one node, and
// connection state recovery's log and sessions in memory. A cluster adapter
// embeds it for the local part (BroadcastLocal, Restore).
//
// Rooms cost two small slice entries per membership (no map per socket or
// per room member): a socket's own id is not stored as a room, the namespace
// resolves it. A broadcast is encoded once and its frames appended to each
// selected connection; a socket in several selected rooms gets it once.
type MemoryAdapter struct {
	nsp *Namespace

	mu    sync.RWMutex
	rooms map[string]*room

	rec *recoveryLog // nil when recovery is off
}

var _ Adapter = (*MemoryAdapter)(nil)

// room is a set of local sockets; each member knows its index here and the
// room its index in the member's list, so leaving is O(1) without maps.
type room struct {
	name    string
	members []roomMember
}

type roomMember struct {
	s  *Socket
	mi int32 // index in s.rooms
}

// socketRoom is one membership as the socket holds it (guarded by the adapter's lock).
type socketRoom struct {
	r  *room
	ri int32 // index in r.members
}

// NewMemoryAdapter makes the in-memory adapter of a namespace.
func NewMemoryAdapter(nsp *Namespace) *MemoryAdapter {
	a := &MemoryAdapter{nsp: nsp, rooms: make(map[string]*room)}
	if o := nsp.srv.opts; !o.DisableRecovery {
		a.rec = newRecoveryLog(o.Recovery, nsp.srv.eng.Wheel())
	}
	return a
}

// AddAll implements Adapter.
func (a *MemoryAdapter) AddAll(s *Socket, rooms []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, name := range rooms {
		a.joinLocked(s, name)
	}
}

func (a *MemoryAdapter) joinLocked(s *Socket, name string) {
	if name == s.id || memberOf(s, name) != nil {
		return
	}
	r := a.rooms[name]
	if r == nil {
		r = &room{name: name}
		a.rooms[name] = r
	}
	r.members = append(r.members, roomMember{s: s, mi: int32(len(s.rooms))})
	s.rooms = append(s.rooms, socketRoom{r: r, ri: int32(len(r.members) - 1)})
}

func memberOf(s *Socket, name string) *room {
	for _, sr := range s.rooms {
		if sr.r.name == name {
			return sr.r
		}
	}
	return nil
}

func isMember(s *Socket, r *room) bool {
	for _, sr := range s.rooms {
		if sr.r == r {
			return true
		}
	}
	return false
}

// Del implements Adapter.
func (a *MemoryAdapter) Del(s *Socket, name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, sr := range s.rooms {
		if sr.r.name == name {
			a.leaveLocked(s, k)
			return
		}
	}
}

// DelAll implements Adapter.
func (a *MemoryAdapter) DelAll(s *Socket) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k := len(s.rooms) - 1; k >= 0; k-- {
		a.leaveLocked(s, k)
	}
	s.rooms = nil
}

// leaveLocked removes membership k of s, swapping the last entries into
// the holes on both sides.
func (a *MemoryAdapter) leaveLocked(s *Socket, k int) {
	sr := s.rooms[k]
	r, i := sr.r, int(sr.ri)
	last := len(r.members) - 1
	if i != last {
		moved := r.members[last]
		r.members[i] = moved
		moved.s.rooms[moved.mi].ri = int32(i)
	}
	r.members[last] = roomMember{}
	r.members = r.members[:last]
	if len(r.members) == 0 {
		delete(a.rooms, r.name)
	}
	lastK := len(s.rooms) - 1
	if k != lastK {
		m := s.rooms[lastK]
		s.rooms[k] = m
		m.r.members[m.ri].mi = int32(k)
	}
	s.rooms[lastK] = socketRoom{}
	s.rooms = s.rooms[:lastK]
}

// SocketRooms implements Adapter.
func (a *MemoryAdapter) SocketRooms(s *Socket) []string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make([]string, len(s.rooms))
	for i, sr := range s.rooms {
		out[i] = sr.r.name
	}
	return out
}

// Rooms lists the rooms that have local members, with their member counts.
func (a *MemoryAdapter) Rooms() map[string]int {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make(map[string]int, len(a.rooms))
	for name, r := range a.rooms {
		out[name] = len(r.members)
	}
	return out
}

// forEach calls fn for every local socket that opts select, each once,
// with the adapter's read lock held: fn must not call the adapter.
func (a *MemoryAdapter) forEach(opts BroadcastOptions, fn func(*Socket)) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	var exRooms []*room
	for _, name := range opts.Except {
		if r := a.rooms[name]; r != nil {
			exRooms = append(exRooms, r)
		}
	}
	excluded := func(s *Socket) bool {
		for _, id := range opts.Except {
			if s.id == id {
				return true
			}
		}
		for _, r := range exRooms {
			if isMember(s, r) {
				return true
			}
		}
		return false
	}
	if len(opts.Rooms) == 0 {
		a.nsp.eachSocket(func(s *Socket) {
			if !excluded(s) {
				fn(s)
			}
		})
		return
	}
	// Earlier selected rooms, to give a socket in several of them the packet once.
	type sel struct {
		r *room
		s *Socket
	}
	var sels []sel
	seen := func(s *Socket) bool {
		for _, x := range sels {
			if x.s == s || (x.r != nil && isMember(s, x.r)) {
				return true
			}
		}
		return false
	}
	for _, name := range opts.Rooms {
		r := a.rooms[name]
		if r != nil {
			for _, m := range r.members {
				if !excluded(m.s) && !seen(m.s) {
					fn(m.s)
				}
			}
		}
		s := a.nsp.socketByID(name)
		if s != nil && !excluded(s) && !seen(s) && (r == nil || !isMember(s, r)) {
			fn(s)
		}
		sels = append(sels, sel{r: r, s: s})
	}
}

// collect returns the selected local sockets.
func (a *MemoryAdapter) collect(opts BroadcastOptions) []*Socket {
	var out []*Socket
	a.forEach(opts, func(s *Socket) { out = append(out, s) })
	return out
}

// Broadcast implements Adapter: encode once (with the recovery offset when
// the packet is kept), then deliver locally.
func (a *MemoryAdapter) Broadcast(p *Packet, opts BroadcastOptions) error {
	text, atts, err := encodeText(p)
	if err != nil {
		return err
	}
	var msg *engine.Message
	if a.rec != nil && p.Type == PacketEvent && !p.HasID && !opts.Flags.Volatile {
		msg = a.rec.append(text, atts, opts)
	} else {
		msg = buildMessage(text, "", atts)
	}
	a.deliver(msg, opts)
	return nil
}

// BroadcastLocal delivers an EVENT to the local sockets opts select,
// encoded once, with offset (when not empty) appended as its last argument.
// A cluster adapter calls it for the broadcasts it assigned an offset to,
// and for those it receives from other nodes.
func (a *MemoryAdapter) BroadcastLocal(p *Packet, opts BroadcastOptions, offset string) error {
	text, atts, err := encodeText(p)
	if err != nil {
		return err
	}
	a.deliver(buildMessage(text, offset, atts), opts)
	return nil
}

// Deliver sends an already built message (BuildMessage) to the local
// sockets opts select, each once. A cluster adapter calls it with the bytes
// another node encoded, so a broadcast is encoded once in the whole cluster.
func (a *MemoryAdapter) Deliver(msg *engine.Message, opts BroadcastOptions) { a.deliver(msg, opts) }

func (a *MemoryAdapter) deliver(msg *engine.Message, opts BroadcastOptions) {
	n := 0
	a.forEach(opts, func(s *Socket) {
		s.deliver(msg, opts.Flags.Volatile)
		n++
	})
	a.nsp.srv.stats.broadcasts.Add(1)
	a.nsp.srv.stats.deliveries.Add(int64(n))
}

// BroadcastWithAck implements Adapter.
func (a *MemoryAdapter) BroadcastWithAck(p *Packet, opts BroadcastOptions, clientCount func(int), ack func([]any)) error {
	text, atts, err := encodeText(p)
	if err != nil {
		return err
	}
	msg := buildMessage(text, "", atts)
	targets := a.collect(opts)
	n := 0
	for _, s := range targets {
		if s.expectAck(p.ID, func(args []any, err error) {
			if err == nil {
				ack(args)
			}
		}, 0) {
			if s.deliver(msg, opts.Flags.Volatile) {
				n++
			} else {
				s.dropAck(p.ID)
			}
		}
	}
	clientCount(n)
	return nil
}

// FetchSockets implements Adapter.
func (a *MemoryAdapter) FetchSockets(_ context.Context, opts BroadcastOptions) ([]RemoteSocket, error) {
	var out []RemoteSocket
	for _, s := range a.collect(opts) {
		if !s.Connected() {
			continue
		}
		out = append(out, s.describe())
	}
	return out, nil
}

// AddSockets implements Adapter.
func (a *MemoryAdapter) AddSockets(opts BroadcastOptions, rooms []string) error {
	for _, s := range a.collect(opts) {
		s.Join(rooms...)
	}
	return nil
}

// DelSockets implements Adapter.
func (a *MemoryAdapter) DelSockets(opts BroadcastOptions, rooms []string) error {
	for _, s := range a.collect(opts) {
		s.Leave(rooms...)
	}
	return nil
}

// DisconnectSockets implements Adapter.
func (a *MemoryAdapter) DisconnectSockets(opts BroadcastOptions, close bool) error {
	for _, s := range a.collect(opts) {
		s.Disconnect(close)
	}
	return nil
}

// ServerSideEmit implements Adapter: a single node has no other node.
func (a *MemoryAdapter) ServerSideEmit(string, []any) error { return nil }

// Offset implements Adapter.
func (a *MemoryAdapter) Offset() string {
	if a.rec == nil {
		return ""
	}
	return strconv.FormatUint(a.rec.last.Load(), 10)
}

// PersistSession implements Adapter.
func (a *MemoryAdapter) PersistSession(s SessionToPersist) {
	if a.rec != nil {
		a.rec.persist(s)
	}
}

// RestoreSession implements Adapter.
func (a *MemoryAdapter) RestoreSession(s *Socket, pid, offset string) (*Session, error) {
	if a.rec == nil {
		return nil, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	sess := a.rec.restore(pid, offset)
	if sess != nil {
		a.admitLocked(s, &sess.SessionToPersist)
	}
	return sess, nil
}

// Restore admits a socket with a session found elsewhere (a cluster
// adapter's store): it takes the session's identity and data, joins its
// rooms and enters the namespace, under the adapter's lock so that no local
// broadcast falls between.
func (a *MemoryAdapter) Restore(s *Socket, sess *SessionToPersist) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.admitLocked(s, sess)
}

func (a *MemoryAdapter) admitLocked(s *Socket, sess *SessionToPersist) {
	s.restore(sess)
	for _, name := range sess.Rooms {
		a.joinLocked(s, name)
	}
}

// Close implements Adapter.
func (a *MemoryAdapter) Close() error {
	if a.rec != nil {
		a.rec.close()
	}
	return nil
}

// recoveryLog keeps the recoverable broadcasts of the last MaxDisconnection
// (bounded in packets and bytes) under increasing offsets, and the sessions
// of sockets that lost their connection.
type recoveryLog struct {
	opts RecoveryOptions

	mu       sync.Mutex
	entries  []logEntry
	head     int
	first    uint64 // offset of entries[head]
	bytes    int
	sessions map[string]*persisted
	sweep    *engine.Timer
	last     atomic.Uint64 // the newest offset given out (0: none yet)
}

type logEntry struct {
	msg    *engine.Message
	rooms  []string
	except []string
	at     int64 // unix ns
}

type persisted struct {
	SessionToPersist
	at int64
}

func newRecoveryLog(o RecoveryOptions, w *engine.Wheel) *recoveryLog {
	l := &recoveryLog{opts: o, first: 1, sessions: make(map[string]*persisted)}
	every := min(o.MaxDisconnection, 30*time.Second)
	var tick func()
	tick = func() {
		l.mu.Lock()
		l.expireLocked(time.Now().UnixNano())
		l.mu.Unlock()
		l.sweep.Reset(every)
	}
	l.sweep = &engine.Timer{}
	l.sweep.Init(w, tick)
	l.sweep.Reset(every)
	return l
}

func (l *recoveryLog) close() { l.sweep.Stop() }

// append assigns the next offset to a broadcast, builds its message with the
// offset as last argument, and keeps it.
func (l *recoveryLog) append(text []byte, atts [][]byte, opts BroadcastOptions) *engine.Message {
	now := time.Now().UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	off := l.first + uint64(len(l.entries)-l.head)
	msg := buildMessage(text, strconv.FormatUint(off, 10), atts)
	l.last.Store(off)
	l.entries = append(l.entries, logEntry{msg: msg, rooms: opts.Rooms, except: opts.Except, at: now})
	l.bytes += msg.Size()
	l.expireLocked(now)
	for l.len() > l.opts.MaxPackets || l.bytes > l.opts.MaxBytes {
		l.dropOldestLocked()
	}
	return msg
}

func (l *recoveryLog) len() int { return len(l.entries) - l.head }

func (l *recoveryLog) dropOldestLocked() {
	l.bytes -= l.entries[l.head].msg.Size()
	l.entries[l.head] = logEntry{}
	l.head++
	l.first++
	if l.head > 1024 && l.head*2 > len(l.entries) {
		n := copy(l.entries, l.entries[l.head:])
		clear(l.entries[n:])
		l.entries, l.head = l.entries[:n], 0
	}
}

func (l *recoveryLog) expireLocked(now int64) {
	limit := now - int64(l.opts.MaxDisconnection)
	for l.len() > 0 && l.entries[l.head].at < limit {
		l.dropOldestLocked()
	}
	for pid, p := range l.sessions {
		if p.at < limit {
			delete(l.sessions, pid)
		}
	}
}

func (l *recoveryLog) persist(s SessionToPersist) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.sessions) >= l.opts.MaxSessions {
		return
	}
	l.sessions[s.PID] = &persisted{SessionToPersist: s, at: time.Now().UnixNano()}
}

// restore takes the session pid (once) and the broadcasts after offset that
// reached its rooms; nil when anything is missing.
func (l *recoveryLog) restore(pid, offset string) *Session {
	now := time.Now().UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.sessions[pid]
	if p == nil {
		return nil
	}
	delete(l.sessions, pid)
	if p.at < now-int64(l.opts.MaxDisconnection) {
		return nil
	}
	off, err := strconv.ParseUint(offset, 10, 64)
	next := l.first + uint64(l.len())
	// Every broadcast after off must still be kept: off+1 ≥ first, and off
	// must have been given out.
	if err != nil || off+1 < l.first || off >= next {
		return nil
	}
	sess := &Session{SessionToPersist: p.SessionToPersist}
	for i := l.head + int(off+1-l.first); i < len(l.entries); i++ {
		e := &l.entries[i]
		if includes(p.Rooms, e.rooms, e.except) {
			sess.Missed = append(sess.Missed, e.msg)
		}
	}
	return sess
}

// SessionIncludes reports whether a broadcast to rooms except except
// reached a session in sessionRooms (its rooms and its own id), for the
// replay of a cluster adapter's recovery: Node's shouldIncludePacket.
func SessionIncludes(sessionRooms, rooms, except []string) bool {
	return includes(sessionRooms, rooms, except)
}

// includes is Node's shouldIncludePacket: the session is in one of the
// rooms (or there were none) and in none of the excepted.
func includes(sessionRooms, rooms, except []string) bool {
	in := len(rooms) == 0
	for _, r := range sessionRooms {
		for _, x := range except {
			if r == x {
				return false
			}
		}
		if !in {
			for _, x := range rooms {
				if r == x {
					in = true
					break
				}
			}
		}
	}
	return in
}

// encodeText encodes a packet's text part (no frame) and its attachments.
func encodeText(p *Packet) ([]byte, [][]byte, error) {
	return AppendPacket(make([]byte, 0, 64), p)
}

// BuildMessage frames a packet encoded by AppendPacket (its text part and
// attachments) into a message that can be sent to many connections, with
// offset (when not empty) appended as the last argument of its array: what a
// cluster adapter hands to MemoryAdapter.Deliver and returns in
// Session.Missed.
func BuildMessage(text []byte, offset string, atts [][]byte) *engine.Message {
	return buildMessage(text, offset, atts)
}

// buildMessage frames an encoded packet once, appending offset as the
// last argument of its array when given.
func buildMessage(text []byte, offset string, atts [][]byte) *engine.Message {
	b := engine.TextBuffer(len(text) + len(offset) + 4)
	if offset != "" && len(text) > 0 && text[len(text)-1] == ']' {
		b = append(b, text[:len(text)-1]...)
		if text[len(text)-2] != '[' {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, offset...)
		b = append(b, '"', ']')
	} else {
		b = append(b, text...)
	}
	m := engine.FinishText(b)
	for _, a := range atts {
		m.AppendBinary(a)
	}
	return m
}

package socketio

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fitmate/commserver/gateway/socketio/engine"
)

const (
	stateConnecting = iota
	stateConnected
	stateDisconnected
)

// Socket is one client's connection to one namespace. Its methods are safe
// for concurrent use. Handlers for one socket run one at a time, in order.
type Socket struct {
	nsp    *Namespace
	client *client
	id     string
	pid    string // private session id (recovery), "" when off

	state     atomic.Uint32
	recovered bool

	mu     sync.Mutex
	data   any
	auth   map[string]any // until the connection handlers ran (unless KeepAuth)
	issued int64          // unix ms of the CONNECT
	acks   []ackEntry
	held   []*engine.Message // restored broadcasts, then what is sent while it connects: delivered after the CONNECT answer
	timers []*engine.Timer

	rooms []socketRoom // MemoryAdapter's, guarded by its lock
}

type ackEntry struct {
	id    uint64
	fn    func(args []any, err error)
	timer *engine.Timer
}

// Handshake is what a socket keeps of its connection's start.
type Handshake struct {
	// Auth is the CONNECT's auth payload: there for middleware and the
	// connection handlers, nil afterwards unless Options.KeepAuth.
	Auth map[string]any
	// Address is the client's IP address as the server saw it.
	Address string
	// Issued is when the CONNECT came.
	Issued time.Time
}

func newSocket(nsp *Namespace, c *client, auth map[string]any) *Socket {
	if auth == nil {
		auth = map[string]any{}
	}
	return &Socket{nsp: nsp, client: c, id: newID(), auth: auth, issued: time.Now().UnixMilli()}
}

// ID is the socket id (random, not the Engine.IO session id).
func (s *Socket) ID() string { return s.id }

// Namespace is the socket's namespace.
func (s *Socket) Namespace() *Namespace { return s.nsp }

// Recovered reports whether the connection restored an earlier session
// (its id, rooms and data, and the broadcasts it missed).
func (s *Socket) Recovered() bool { return s.recovered }

// Connected reports whether the socket is connected.
func (s *Socket) Connected() bool { return s.state.Load() == stateConnected }

// Data returns the application's data for this socket (kept by recovery).
func (s *Socket) Data() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data
}

// SetData sets the application's data for this socket.
func (s *Socket) SetData(v any) {
	s.mu.Lock()
	s.data = v
	s.mu.Unlock()
}

// Handshake returns the socket's handshake.
func (s *Socket) Handshake() Handshake {
	s.mu.Lock()
	auth := s.auth
	s.mu.Unlock()
	return Handshake{Auth: auth, Address: s.client.conn.RemoteAddr(), Issued: time.UnixMilli(s.issued)}
}

// Header returns a handshake request header listed in Options.KeepHeaders.
func (s *Socket) Header(name string) string { return s.client.conn.Header(name) }

// Query returns a handshake query parameter listed in Options.KeepQuery.
func (s *Socket) Query(name string) string { return s.client.conn.Query(name) }

// RemoteAddr is the client's IP address.
func (s *Socket) RemoteAddr() string { return s.client.conn.RemoteAddr() }

// Transport is the connection's current transport ("polling" or "websocket").
func (s *Socket) Transport() string { return s.client.conn.Transport() }

// PID is the socket's private session id, which its client presents to
// recover the session ("" with recovery off). A cluster adapter keys the
// sessions it keeps by it; it is a secret: never send it to anyone else.
func (s *Socket) PID() string { return s.pid }

// Rooms lists the socket's rooms, its own id first.
func (s *Socket) Rooms() []string {
	return append([]string{s.id}, s.nsp.adapter.SocketRooms(s)...)
}

// Join adds the socket to rooms.
func (s *Socket) Join(rooms ...string) {
	if s.state.Load() == stateDisconnected {
		return
	}
	s.nsp.adapter.AddAll(s, rooms)
}

// Leave removes the socket from rooms.
func (s *Socket) Leave(rooms ...string) {
	for _, r := range rooms {
		s.nsp.adapter.Del(s, r)
	}
}

// Emit sends an event to this socket alone, written directly to its
// connection (not through the adapter, so not kept for replay: emit to
// To(s.ID()) for that). With recovery on it carries the adapter's current
// offset as its last argument, as every event does in Node then. Arguments
// are encoded with encoding/json; []byte values (also inside []any and
// map[string]any) go as binary attachments.
func (s *Socket) Emit(event string, args ...any) error {
	if reserved(event) {
		return ErrReservedEvent
	}
	data := eventData(event, args)
	if s.pid != "" {
		if off := s.nsp.adapter.Offset(); off != "" {
			data = append(data, off)
		}
	}
	m, err := s.encode(&Packet{Type: PacketEvent, Data: data})
	if err != nil {
		return err
	}
	return s.send(m)
}

// EmitWithAck sends an event and waits for the client's acknowledgement,
// until ctx ends (ctx.Err()) or the socket disconnects (ErrDisconnected).
// Do not call it where the answer cannot come while you wait (it is
// delivered off the socket's queue, so waiting inside a handler is fine).
func (s *Socket) EmitWithAck(ctx context.Context, event string, args ...any) ([]any, error) {
	if reserved(event) {
		return nil, ErrReservedEvent
	}
	type result struct {
		args []any
		err  error
	}
	ch := make(chan result, 1)
	id := s.nsp.ackSeq.Add(1) - 1
	if !s.expectAck(id, func(a []any, err error) { ch <- result{a, err} }, 0) {
		return nil, ErrDisconnected
	}
	m, err := s.encode(&Packet{Type: PacketEvent, ID: id, HasID: true, Data: eventData(event, args)})
	if err == nil {
		err = s.send(m)
	}
	if err != nil {
		s.dropAck(id)
		return nil, err
	}
	select {
	case r := <-ch:
		return r.args, r.err
	case <-ctx.Done():
		s.dropAck(id)
		return nil, ctx.Err()
	}
}

// EmitAck sends an event and calls fn with the acknowledgement, or with
// ErrAckTimeout after timeout (none when 0), or ErrDisconnected. fn runs on
// the socket's queue, like its handlers.
func (s *Socket) EmitAck(timeout time.Duration, fn func(args []any, err error), event string, args ...any) error {
	if reserved(event) {
		return ErrReservedEvent
	}
	id := s.nsp.ackSeq.Add(1) - 1
	onQueue := func(a []any, err error) {
		s.nsp.srv.submit(s.client, s, func() { fn(a, err) }, false)
	}
	if !s.expectAck(id, onQueue, timeout) {
		return ErrDisconnected
	}
	m, err := s.encode(&Packet{Type: PacketEvent, ID: id, HasID: true, Data: eventData(event, args)})
	if err == nil {
		err = s.send(m)
	}
	if err != nil {
		s.dropAck(id)
	}
	return err
}

// To selects the sockets in rooms, this one excepted (socket.to in Node).
func (s *Socket) To(rooms ...string) BroadcastOperator {
	return s.nsp.op().Except(s.id).To(rooms...)
}

// In is To.
func (s *Socket) In(rooms ...string) BroadcastOperator { return s.To(rooms...) }

// Except selects every socket but this one and those in rooms.
func (s *Socket) Except(rooms ...string) BroadcastOperator {
	return s.nsp.op().Except(s.id).Except(rooms...)
}

// Broadcast selects every socket of the namespace but this one.
func (s *Socket) Broadcast() BroadcastOperator { return s.nsp.op().Except(s.id) }

// Disconnect ends the socket from the server's side: a DISCONNECT packet
// (after everything queued), then the disconnect handlers with "server
// namespace disconnect". With close, every namespace of the connection is
// disconnected and the connection closed. socket.io-client does not
// reconnect after a DISCONNECT (see CloseTransport).
func (s *Socket) Disconnect(close bool) {
	if close {
		s.client.disconnectAll()
		return
	}
	if s.state.Load() != stateConnected {
		return
	}
	s.sendDisconnect()
	s.detach(ReasonServerNamespaceDisconnect)
}

// CloseTransport closes the socket's whole connection at the transport
// level, without DISCONNECT packets, after what is queued: the client sees
// "transport close" and reconnects by itself (with recovery, into the same
// session). The disconnect handlers get "forced server close".
func (s *Socket) CloseTransport() { s.client.closeTransport(ReasonForcedServerClose) }

// AfterFunc runs fn on the socket's queue after d, unless the socket
// disconnected first or the timer was stopped. The timer lives on the
// server's wheel and is stopped when the socket disconnects.
func (s *Socket) AfterFunc(d time.Duration, fn func(*Socket)) *Timer {
	t := &engine.Timer{}
	t.Init(s.nsp.srv.eng.Wheel(), func() {
		if s.Connected() {
			s.nsp.srv.submit(s.client, s, func() {
				if s.Connected() {
					fn(s)
				}
			}, false)
		}
	})
	s.mu.Lock()
	if s.state.Load() == stateDisconnected {
		s.mu.Unlock()
		return t
	}
	live := s.timers[:0]
	for _, x := range s.timers {
		if x.Armed() {
			live = append(live, x)
		}
	}
	clear(s.timers[len(live):])
	s.timers = append(live, t)
	s.mu.Unlock()
	t.Reset(d)
	return t
}

func (s *Socket) encode(p *Packet) (*engine.Message, error) {
	p.Nsp = s.nsp.name
	text, atts, err := encodeText(p)
	if err != nil {
		return nil, err
	}
	return buildMessage(text, "", atts), nil
}

func eventData(event string, args []any) []any {
	d := make([]any, 0, len(args)+1)
	d = append(d, event)
	return append(d, args...)
}

func reserved(event string) bool {
	for _, r := range reservedEvents {
		if event == r {
			return true
		}
	}
	return false
}

// send writes a message to this socket: now when connected, after the
// CONNECT answer when connecting.
func (s *Socket) send(m *engine.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state.Load() {
	case stateConnected:
		return s.client.conn.SendMessage(m)
	case stateConnecting:
		return s.holdLocked(m)
	}
	return ErrDisconnected
}

// deliver is send for broadcasts; it reports whether the message went (or was held).
func (s *Socket) deliver(m *engine.Message, volatile bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state.Load() {
	case stateConnected:
		if volatile && !s.client.conn.Writable() {
			return false
		}
		return s.client.conn.SendMessage(m) == nil
	case stateConnecting:
		if volatile {
			return false
		}
		return s.holdLocked(m) == nil
	}
	return false
}

func (s *Socket) holdLocked(m *engine.Message) error {
	if len(s.held) >= s.nsp.srv.opts.MailboxSize {
		return ErrDisconnected
	}
	s.held = append(s.held, m)
	return nil
}

func (s *Socket) expectAck(id uint64, fn func([]any, error), timeout time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.Load() == stateDisconnected {
		return false
	}
	e := ackEntry{id: id, fn: fn}
	if timeout > 0 {
		e.timer = s.nsp.srv.eng.Wheel().AfterFunc(timeout, func() {
			if e := s.takeAck(id); e != nil {
				e.fn(nil, ErrAckTimeout)
			}
		})
	}
	s.acks = append(s.acks, e)
	return true
}

func (s *Socket) takeAck(id uint64) *ackEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.acks {
		if s.acks[i].id == id {
			e := s.acks[i]
			last := len(s.acks) - 1
			s.acks[i] = s.acks[last]
			s.acks[last] = ackEntry{}
			s.acks = s.acks[:last]
			if len(s.acks) == 0 {
				s.acks = nil
			}
			return &e
		}
	}
	return nil
}

func (s *Socket) dropAck(id uint64) {
	if e := s.takeAck(id); e != nil && e.timer != nil {
		e.timer.Stop()
	}
}

// onAck delivers a client's acknowledgement (on the reading goroutine).
func (s *Socket) onAck(id uint64, args []any) {
	if e := s.takeAck(id); e != nil {
		if e.timer != nil {
			e.timer.Stop()
		}
		e.fn(args, nil)
	}
}

// restore gives a connecting socket the identity of a recovered session
// and enters it in the namespace.
func (s *Socket) restore(sess *SessionToPersist) {
	s.id, s.pid = sess.SID, sess.PID
	s.recovered = true
	s.mu.Lock()
	s.data = sess.Data
	s.mu.Unlock()
	s.nsp.add(s)
}

// DiscardRecovery is for a middleware that finds a restored session is not
// this client's to take (its token names another user than the session's
// rooms do): the socket leaves every restored room, the broadcasts it
// missed and those held for it are dropped, and it goes on as a new
// session, with a fresh id and private id. It does nothing on a socket
// that was not recovered.
func (s *Socket) DiscardRecovery() {
	if !s.recovered {
		return
	}
	nsp := s.nsp
	nsp.adapter.DelAll(s)
	nsp.remove(s)
	s.mu.Lock()
	s.held, s.data = nil, nil
	s.mu.Unlock()
	s.id, s.pid, s.recovered = newID(), newID(), false
	nsp.add(s)
}

// establish makes a connecting socket connected: the CONNECT answer, then
// the restored and held messages, with nothing of anyone else's between.
func (s *Socket) establish() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.Load() != stateConnecting || s.client.isClosed() {
		return false
	}
	s.state.Store(stateConnected)
	b := make([]byte, 0, 64)
	b = append(b, '0')
	if s.nsp.name != "/" {
		b = append(b, s.nsp.name...)
		b = append(b, ',')
	}
	b = append(b, `{"sid":"`...)
	b = append(b, s.id...)
	if s.pid != "" {
		b = append(b, `","pid":"`...)
		b = append(b, s.pid...)
	}
	b = append(b, `"}`...)
	conn := s.client.conn
	_ = conn.SendMessage(engine.NewTextMessage(b))
	for _, m := range s.held {
		_ = conn.SendMessage(m)
	}
	s.held = nil
	return true
}

// refuse answers a CONNECT that middleware refused.
func (s *Socket) refuse(err error) {
	s.nsp.srv.stats.refused.Add(1)
	ce, ok := err.(*ConnectError)
	if !ok {
		ce = &ConnectError{Message: err.Error()}
	}
	s.abandon()
	s.client.sendConnectError(s.nsp.name, ce)
}

// abandon drops a socket that never connected.
func (s *Socket) abandon() {
	s.mu.Lock()
	s.state.Store(stateDisconnected)
	s.held = nil
	s.mu.Unlock()
	s.nsp.adapter.DelAll(s)
	s.nsp.remove(s)
	s.client.removeSocket(s)
}

func (s *Socket) sendDisconnect() {
	b := []byte{'1'}
	if s.nsp.name != "/" {
		b = append(b, s.nsp.name...)
		b = append(b, ',')
	}
	_ = s.client.conn.SendMessage(engine.NewTextMessage(b))
}

// detach disconnects the socket once: it leaves its rooms and namespace at
// once (persisting its session when the reason is recoverable), its pending
// acknowledgements fail, and its disconnect handlers are queued after
// everything queued before. It reports whether the socket was connected.
func (s *Socket) detach(reason string) bool {
	s.mu.Lock()
	st := s.state.Load()
	if st == stateDisconnected {
		s.mu.Unlock()
		return false
	}
	s.state.Store(stateDisconnected)
	acks, timers := s.acks, s.timers
	s.acks, s.timers, s.held = nil, nil, nil
	data := s.data
	s.mu.Unlock()

	nsp, srv := s.nsp, s.nsp.srv
	if st == stateConnected && s.pid != "" && recoverable(reason) {
		rooms := append(nsp.adapter.SocketRooms(s), s.id)
		nsp.adapter.PersistSession(SessionToPersist{SID: s.id, PID: s.pid, Rooms: rooms, Data: data})
	}
	nsp.adapter.DelAll(s)
	nsp.remove(s)
	s.client.removeSocket(s)
	for _, t := range timers {
		t.Stop()
	}
	for _, e := range acks {
		if e.timer != nil {
			e.timer.Stop()
		}
		e.fn(nil, ErrDisconnected)
	}
	if st != stateConnected {
		return false
	}
	srv.stats.disconnects.Add(1)
	srv.submit(s.client, s, func() {
		for _, f := range nsp.table.Load().disconnect {
			srv.guard(s, func() error { f(s, reason); return nil })
		}
	}, false)
	return true
}

// onPacket handles a packet for this socket, on its queue.
func (s *Socket) onPacket(p *Packet) {
	switch p.Type {
	case PacketEvent, PacketBinaryEvent:
		if s.state.Load() != stateConnected {
			return
		}
		args := p.Data.([]any)
		var event string
		switch name := args[0].(type) {
		case string:
			event = name
		case float64:
			event = formatNumber(name)
		}
		args = args[1:]
		var ack AckFunc
		if p.HasID {
			ack = s.ackFunc(p.ID)
		}
		h := s.nsp.table.Load()
		srv := s.nsp.srv
		if f := h.events[event]; f != nil {
			srv.guard(s, func() error { f(s, args, ack); return nil })
		} else if h.any != nil {
			srv.guard(s, func() error { h.any(s, event, args, ack); return nil })
		}
	case PacketDisconnect:
		s.detach(ReasonClientNamespaceDisconnect)
	}
}

// ackFunc answers a client's acknowledgement once.
func (s *Socket) ackFunc(id uint64) AckFunc {
	var sent atomic.Bool
	return func(args ...any) {
		if sent.Swap(true) {
			return
		}
		if args == nil {
			args = []any{}
		}
		m, err := s.encode(&Packet{Type: PacketAck, ID: id, HasID: true, Data: args})
		if err != nil {
			s.nsp.srv.log.Warn("socket.io: ack arguments do not encode", "sid", s.id, "err", err)
			return
		}
		_ = s.send(m)
	}
}

func (s *Socket) describe() RemoteSocket {
	s.mu.Lock()
	data, auth := s.data, s.auth
	s.mu.Unlock()
	return RemoteSocket{
		ID: s.id, Rooms: s.Rooms(), Data: data, Address: s.client.conn.RemoteAddr(), Auth: auth,
		nsp: s.nsp, local: s,
	}
}

package engine

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Reasons a session closes, as Node's engine.io names them.
const (
	ReasonTransportClose = "transport close"      // the client closed (close packet, WebSocket close, gone)
	ReasonTransportError = "transport error"      // a transport failed, or the client broke a rule (cut off, overlap)
	ReasonPingTimeout    = "ping timeout"         // no pong within PingTimeout
	ReasonParseError     = "parse error"          // a malformed packet
	ReasonForcedClose    = "forced close"         // Session.Close
	ReasonServerShutdown = "server shutting down" // Server.Close
)

// ErrBacklog is returned by a send that found the connection's backlog over
// MaxBacklog: the client does not read, and its session was closed.
var ErrBacklog = errors.New("engine.io: client backlog over limit")

const (
	stateOpen    = iota
	stateClosing // closed for sends; a final poll may still collect queued packets
	stateClosed
)

const (
	transportPolling = iota
	transportWebSocket
)

// Session is one Engine.IO connection, on long-polling or WebSocket; it
// survives the upgrade from one to the other. Its methods are safe for
// concurrent use.
type Session struct {
	srv        *Server
	id         string
	remoteAddr string
	kept       []string // header and query values kept from the handshake: "h:"+name or "q:"+name, value, ...

	ctx        any          // the application's state (SetContext)
	upgradedAt atomic.Int64 // when the session moved to WebSocket (Unix ns)

	mu        sync.Mutex
	state     uint8
	transport uint8
	upgrading bool
	probed    bool
	queued    bool // in the flush queue, or being flushed
	awaitPong bool
	pingSent  bool // a poll carried the outstanding ping
	pollNoop  bool // the client closed over polling: the last poll gets a noop
	posting   bool
	cut       bool   // over MaxBacklog: closing, sends refused
	pending   []byte // frames queued (both transports queue WebSocket frames)
	// shared are broadcast messages queued after pending on a WebSocket, by
	// reference: a broadcast's frames are written once, and each of its
	// connections keeps a pointer instead of a copy in a buffer of its own
	// (the copies' cache misses were the receiving pod's largest cost after
	// write(2)). sharedBytes is their size. Whatever appends to pending
	// first moves them into it (spillLocked), so the order is kept.
	shared      []*Message
	sharedBytes int
	ws          *wsConn       // the WebSocket transport, once it is the session's
	probe       *wsConn       // a WebSocket being upgraded to
	poll        chan struct{} // wakes the parked long-poll GET
	hb          Timer         // next ping, or the pong's deadline
	aux         *Timer        // upgrade or close timeout
}

// ID is the session id (the "sid" of the protocol).
func (s *Session) ID() string { return s.id }

// RemoteAddr is the client's IP address as the server saw it (no port).
func (s *Session) RemoteAddr() string { return s.remoteAddr }

// Header returns a handshake request header that Options.KeepHeaders listed.
func (s *Session) Header(name string) string { return s.keptValue("h:", name) }

// Query returns a handshake query parameter that Options.KeepQuery listed.
func (s *Session) Query(name string) string { return s.keptValue("q:", name) }

func (s *Session) keptValue(kind, name string) string {
	for i := 0; i+1 < len(s.kept); i += 2 {
		k := s.kept[i]
		if len(k) == len(kind)+len(name) && strings.HasPrefix(k, kind) && strings.EqualFold(k[len(kind):], name) {
			return s.kept[i+1]
		}
	}
	return ""
}

func (s *Session) keepRequest(r *http.Request, headers, query []string) {
	for _, h := range headers {
		if v := r.Header.Get(h); v != "" {
			s.kept = append(s.kept, "h:"+h, v)
		}
	}
	for _, q := range query {
		if v := queryValue(r.URL.RawQuery, q); v != "" {
			s.kept = append(s.kept, "q:"+q, v)
		}
	}
}

// SetContext stores the application's state for this session. Call it in
// OnOpen, before other goroutines look at the session.
func (s *Session) SetContext(v any) { s.ctx = v }

// Context returns what SetContext stored.
func (s *Session) Context() any { return s.ctx }

// Transport is the session's current transport name.
func (s *Session) Transport() string { return s.transportName() }

func (s *Session) transportName() string {
	s.mu.Lock()
	t := s.transport
	s.mu.Unlock()
	if t == transportWebSocket {
		return TransportWebSocket
	}
	return TransportPolling
}

// Writable reports whether a packet sent now leaves at once: on WebSocket,
// always; on polling, when a poll request is waiting.
func (s *Session) Writable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == stateOpen && (s.transport == transportWebSocket || s.poll != nil)
}

// Send queues one message packet (text, or binary data).
func (s *Session) Send(data []byte, binary bool) error {
	s.mu.Lock()
	if s.state != stateOpen || s.cut {
		s.mu.Unlock()
		return ErrClosed
	}
	s.spillLocked()
	s.pending = appendMessageFrame(s.pending, data, binary)
	return s.queuedLocked()
}

// SendMessage queues a prepared message (its packets back to back, nothing
// of another sender between them).
func (s *Session) SendMessage(m *Message) error {
	s.mu.Lock()
	if s.state != stateOpen || s.cut {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.ws != nil && s.transport == transportWebSocket {
		if s.shared == nil {
			s.shared = getShared()
		}
		s.shared = append(s.shared, m)
		s.sharedBytes += len(m.frames)
	} else {
		if s.pending == nil {
			s.pending = getBuf()
		}
		s.pending = append(s.pending, m.frames...)
	}
	return s.queuedLocked()
}

// spillLocked readies pending for an append: the shared messages queued
// before it are copied in first. pending is non-nil afterwards.
func (s *Session) spillLocked() {
	if s.pending == nil {
		s.pending = getBuf()
	}
	if len(s.shared) > 0 {
		s.pending = appendShared(s.pending, s.shared)
		putShared(s.shared)
		s.shared, s.sharedBytes = nil, 0
	}
}

// dropQueuedLocked forgets everything queued.
func (s *Session) dropQueuedLocked() {
	putBuf(s.pending)
	s.pending = nil
	putShared(s.shared)
	s.shared, s.sharedBytes = nil, 0
}

// queuedBytesLocked is the size of what is queued.
func (s *Session) queuedBytesLocked() int { return len(s.pending) + s.sharedBytes }

func appendShared(dst []byte, ms []*Message) []byte {
	for _, m := range ms {
		dst = append(dst, m.frames...)
	}
	return dst
}

// queuedLocked schedules what was just queued and unlocks: the flusher for a
// WebSocket, the parked poll for polling. A backlog over the limit closes the session.
func (s *Session) queuedLocked() error {
	backlog := s.queuedBytesLocked()
	if s.ws != nil {
		backlog += int(s.ws.inflight.Load())
	}
	if backlog > s.srv.opts.MaxBacklog {
		// Cut off. The close runs on its own goroutine: the sender may hold
		// locks (a broadcast holds its adapter's) that OnClose needs.
		s.cut = true
		s.dropQueuedLocked()
		s.mu.Unlock()
		s.srv.stats.cutOff.Add(1)
		s.srv.log.Warn("engine.io: client does not read, cut off", "sid", s.id, "backlog", backlog)
		go s.close(ReasonTransportError, false)
		return ErrBacklog
	}
	s.scheduleLocked()
	s.mu.Unlock()
	return nil
}

func (s *Session) scheduleLocked() {
	if s.queuedBytesLocked() == 0 {
		return
	}
	if s.transport == transportWebSocket {
		if s.ws != nil && !s.queued {
			s.queued = true
			s.srv.flush.push(s)
		}
		return
	}
	s.wakePollLocked()
}

func (s *Session) wakePollLocked() {
	if s.poll != nil {
		select {
		case s.poll <- struct{}{}:
		default:
		}
		s.poll = nil
	}
}

// Close closes the session from the server's side: packets queued before
// the call are delivered first (within CloseTimeout), then the client is told
// to close. OnClose is called with "forced close".
func (s *Session) Close() { s.close(ReasonForcedClose, true) }

// close ends the session once. graceful keeps what is queued and delivers it
// before the close; otherwise it is dropped (as Node drops its write buffer).
func (s *Session) close(reason string, graceful bool) {
	s.closeWith(reason, graceful, closeCodeFor(reason))
}

// closeWith is close with the WebSocket close code to send.
func (s *Session) closeWith(reason string, graceful bool, code uint16) {
	s.mu.Lock()
	if s.state != stateOpen {
		s.mu.Unlock()
		return
	}
	s.srv.log.Debug("engine.io: session closes", "sid", s.id, "reason", reason)
	s.hb.Stop()
	if s.aux != nil {
		s.aux.Stop()
	}
	probe := s.probe
	s.probe, s.upgrading = nil, false
	if !graceful {
		s.dropQueuedLocked()
	}
	remove := true
	s.pollNoop = reason == ReasonTransportClose
	switch {
	case s.transport == transportWebSocket:
		s.state = stateClosed
		if s.ws != nil {
			s.ws.sendCloseLocked(code)
		}
	case s.poll != nil:
		// The parked poll answers with what is queued and the close (or a
		// noop, when the client closed).
		s.state = stateClosed
		s.wakePollLocked()
	case reason == ReasonTransportClose || (graceful && s.queuedBytesLocked() > 0 && reason != ReasonServerShutdown):
		// Keep the session for the poll that collects the queued packets (or,
		// when the client closed, the poll it sent at the same time). A
		// shutdown does not wait for a poll that is not there (Node neither).
		s.state = stateClosing
		s.armAuxLocked(s.finishClosing)
		if s.pollNoop {
			// Only a poll sent at the same time as the close is worth waiting for.
			s.aux.Reset(min(s.srv.opts.CloseTimeout, clientCloseGrace))
		}
		remove = false
	default:
		s.state = stateClosed
	}
	s.mu.Unlock()
	if probe != nil {
		probe.closeNow(CloseNormal)
	}
	if remove {
		s.srv.remove(s)
	}
	s.srv.stats.closed.Add(1)
	s.srv.h.OnClose(s, reason)
}

// clientCloseGrace is how long a session the client closed over polling
// waits for a poll sent with the close (it is answered with a noop).
const clientCloseGrace = time.Second

func closeCodeFor(reason string) uint16 {
	switch reason {
	case ReasonParseError:
		return CloseProtocolError
	case ReasonServerShutdown:
		return CloseGoingAway
	case ReasonTransportError:
		return CloseInternalError
	}
	return CloseNormal
}

// armAuxLocked (re)arms the session's second timer.
func (s *Session) armAuxLocked(f func()) {
	if s.aux == nil {
		s.aux = &Timer{}
	}
	s.aux.Init(s.srv.wheel, f)
	d := s.srv.opts.CloseTimeout
	if s.state == stateOpen {
		d = s.srv.opts.UpgradeTimeout
	}
	s.aux.Reset(d)
}

// finishClosing drops a closing polling session whose last poll never came.
func (s *Session) finishClosing() {
	s.mu.Lock()
	if s.state != stateClosing || s.aux.Armed() {
		s.mu.Unlock()
		return
	}
	s.state = stateClosed
	s.dropQueuedLocked()
	s.mu.Unlock()
	s.srv.remove(s)
}

// onHeartbeat runs on the wheel: send a ping, or close when the pong is late.
func (s *Session) onHeartbeat() {
	s.mu.Lock()
	if s.state != stateOpen || s.hb.Armed() {
		s.mu.Unlock()
		return
	}
	if s.awaitPong {
		s.cut = true // from now on a late pong changes nothing, sends are refused
		s.mu.Unlock()
		go s.close(ReasonPingTimeout, false) // off the wheel: OnClose may wait on locks
		return
	}
	s.awaitPong, s.pingSent = true, false
	s.hb.Reset(s.pongDeadline())
	s.spillLocked()
	s.pending = appendPacketFrame(s.pending, PacketPing, nil)
	if s.cut {
		s.mu.Unlock()
		return
	}
	_ = s.queuedLocked()
}

// pongDeadline is PingTimeout less one tick of the wheel: a timer may fire
// a tick late on a busy machine, and the client expects the session gone
// PingInterval+PingTimeout after the last ping it answered, not later.
func (s *Session) pongDeadline() time.Duration {
	d, res := s.srv.opts.PingTimeout, s.srv.wheel.Resolution()
	if d > 4*res {
		d -= res
	}
	return d
}

// pingDelivered restarts the pong deadline when a poll carries the ping to
// the client: it cannot answer before it has it, and the wait for the poll
// (a goroutine to wake on a busy machine) is the server's, not the client's.
// A ping no poll collects still times out from when it was queued.
func (s *Session) pingDeliveredLocked() {
	if s.awaitPong && !s.pingSent && !s.cut {
		s.pingSent = true
		s.hb.Reset(s.srv.opts.PingTimeout)
	}
}

func (s *Session) onPong() {
	s.mu.Lock()
	if s.state == stateOpen && s.awaitPong && !s.cut {
		s.awaitPong = false
		s.hb.Reset(s.srv.opts.PingInterval)
	}
	s.mu.Unlock()
}

// onPacket handles a packet from the session's transport. It reports
// whether the session is still open.
func (s *Session) onPacket(p Packet) bool {
	switch p.Type {
	case PacketMessage:
		s.srv.h.OnMessage(s, p.Data, p.Binary)
	case PacketPong:
		s.onPong()
	case PacketClose:
		s.close(ReasonTransportClose, false)
		return false
	case PacketPing:
		// In protocol 4 the server pings; Node calls this "invalid heartbeat direction".
		s.close(ReasonTransportError, false)
		return false
	}
	return true
}

// onOversize hands an oversize message to the handler; it reports whether
// the session stays open.
func (s *Session) onOversize(prefix []byte, binary bool) bool {
	s.srv.stats.oversize.Add(1)
	if !binary {
		if len(prefix) == 0 || prefix[0] != byte(PacketMessage) {
			return false
		}
		prefix = prefix[1:]
	}
	return s.srv.h.OnOversize(s, prefix, binary)
}

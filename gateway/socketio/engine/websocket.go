package engine

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/logging"
)

// wsConn is one WebSocket connection: its frame reader (run by the event
// loop, one goroutine at a time) and its link to the session. Frames to send
// are queued on the session; a flusher writes them here.
type wsConn struct {
	sess *Session
	conn connWriter
	fr   frameReader

	inflight        atomic.Int64 // bytes handed to the event loop, not yet on the wire
	closeAfterFlush atomic.Bool  // close the TCP connection once everything is written
	dead            atomic.Bool  // the TCP connection is closed

	closeSent  atomic.Bool           // our close frame is queued or written
	closeTimer atomic.Pointer[Timer] // forces the TCP close when the client never answers ours

	setup   *wsSetup // from attach to opened (on the loop's OnOpen)
	bound   bool     // set once by opened: the connection is its session's
	stopped bool     // reader goroutine only: a protocol violation, parse nothing more
}

type wsSetup struct {
	bind     func() bool
	leftover []byte
}

// connWriter is what a wsConn writes to: an event-loop connection (writes
// never block; what the kernel does not take is buffered by the loop) or, for
// connections the loop cannot take over, a net.Conn.
type connWriter interface {
	Write([]byte) (int, error)
	Close() error
}

var loopLoggerOnce sync.Once

// setLoopLogger sends nbio's warnings and errors to the first server's
// logger (nbio has one process-wide logger) and drops its chatter.
func setLoopLogger(l interface {
	Warn(string, ...any)
	Error(string, ...any)
}) {
	loopLoggerOnce.Do(func() { logging.SetLogger(loopLogger{l}) })
}

type loopLogger struct {
	l interface {
		Warn(string, ...any)
		Error(string, ...any)
	}
}

func (loopLogger) Debug(string, ...any)            {}
func (loopLogger) Info(string, ...any)             {}
func (g loopLogger) Warn(format string, v ...any)  { g.l.Warn("nbio: "+trimFormat(format), "args", v) }
func (g loopLogger) Error(format string, v ...any) { g.l.Error("nbio: "+trimFormat(format), "args", v) }
func trimFormat(f string) string                   { return strings.TrimSpace(f) }

const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// hijack checks a WebSocket handshake, takes the connection over from
// net/http and writes the 101 answer followed by first (frames already due).
// It returns the connection and what the client sent after its request.
func hijack(w http.ResponseWriter, r *http.Request, first []byte) (net.Conn, []byte, bool) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if k, err := base64.StdEncoding.DecodeString(key); err != nil || len(k) != 16 {
		abortUpgrade(w, ErrBadRequest, "")
		return nil, nil, false
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		abortUpgrade(w, ErrBadRequest, "")
		return nil, nil, false
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		abortUpgrade(w, ErrBadRequest, "")
		return nil, nil, false
	}
	leftover := buffered(brw)
	sum := sha1.Sum([]byte(key + websocketGUID))
	resp := make([]byte, 0, 160+len(first))
	resp = append(resp, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	resp = base64.StdEncoding.AppendEncode(resp, sum[:])
	resp = append(resp, "\r\n\r\n"...)
	resp = append(resp, first...)
	_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(resp); err != nil {
		_ = conn.Close()
		return nil, nil, false
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, leftover, true
}

func buffered(brw *bufio.ReadWriter) []byte {
	if brw == nil || brw.Reader.Buffered() == 0 {
		return nil
	}
	b, _ := brw.Reader.Peek(brw.Reader.Buffered())
	return append([]byte(nil), b...)
}

// acceptThenClose completes an upgrade that cannot be served and closes it
// at once, as Node does for a second WebSocket on an upgraded session.
func (s *Server) acceptThenClose(w http.ResponseWriter, r *http.Request) {
	conn, _, ok := hijack(w, r, appendCloseFrame(nil, CloseNoStatus))
	if ok {
		go lingerClose(conn)
	}
}

// lingerClose waits briefly for the client's close frame before closing, so
// that our close frame is not lost to a reset.
func lingerClose(conn net.Conn) {
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, _ = io.Copy(io.Discard, io.LimitReader(conn, 1<<16))
	_ = conn.Close()
}

// openWebSocket handles a WebSocket handshake without a sid: a new session
// on WebSocket from its first packet.
func (s *Server) openWebSocket(w http.ResponseWriter, r *http.Request) {
	ss := s.newSession(r, TransportWebSocket)
	if ss == nil {
		abortUpgrade(w, ErrBadRequest, "")
		return
	}
	ss.mu.Lock()
	first := ss.pending
	ss.pending = nil
	ss.mu.Unlock()
	conn, leftover, ok := hijack(w, r, first)
	putBuf(first)
	if !ok {
		ss.close(ReasonTransportError, false)
		return
	}
	ws := s.newWSConn(ss)
	bound := ws.attach(conn, leftover, func() bool {
		ss.mu.Lock()
		defer ss.mu.Unlock()
		if ss.state != stateOpen {
			return false
		}
		ss.ws = ws
		ss.scheduleLocked()
		return true
	})
	if !bound {
		ss.close(ReasonTransportError, false)
	}
}

// upgrade handles a WebSocket handshake for a polling session: the probe.
func (s *Server) upgrade(w http.ResponseWriter, r *http.Request, ss *Session) {
	conn, leftover, ok := hijack(w, r, nil)
	if !ok {
		return
	}
	ws := s.newWSConn(ss)
	ws.attach(conn, leftover, func() bool {
		ss.mu.Lock()
		defer ss.mu.Unlock()
		if ss.state != stateOpen || ss.upgrading || ss.transport != transportPolling || s.opts.DisableUpgrades {
			return false
		}
		ss.upgrading, ss.probed, ss.probe = true, false, ws
		ss.armAuxLocked(ss.onUpgradeTimeout)
		return true
	})
}

func (s *Server) newWSConn(ss *Session) *wsConn {
	return &wsConn{sess: ss, fr: frameReader{frameLimits: &s.limits}}
}

// attach hands conn to the event loop (or, when the loop cannot take it, to
// a reading goroutine). Once the connection can be written to, and before
// anything is read from it, bind links it to its session; when bind refuses,
// the connection gets a close frame and is closed. It reports whether bind
// accepted. What the client sent after its request (leftover) is parsed first.
func (ws *wsConn) attach(conn net.Conn, leftover []byte, bind func() bool) bool {
	ws.setup = &wsSetup{bind: bind, leftover: leftover}
	if tcp, ok := conn.(*net.TCPConn); ok {
		nc, err := nbio.NBConn(tcp)
		if err != nil {
			_ = conn.Close()
			return false
		}
		ws.conn = nc
		nc.SetSession(ws)
		// AddConn calls the loop's OnOpen (opened, below) before it reads.
		if _, err := ws.sess.srv.loop.AddConn(nc); err != nil {
			ws.sess.srv.log.Warn("engine.io: the poller did not take a connection", "sid", ws.sess.id, "err", err)
		}
		return ws.bound
	}
	ws.conn = &stdConn{Conn: conn}
	ws.opened()
	if !ws.bound {
		go lingerClose(conn)
		return false
	}
	go ws.readLoop(conn)
	return true
}

// opened runs once the connection is writable and not yet read.
func (ws *wsConn) opened() {
	st := ws.setup
	ws.setup = nil
	if st == nil {
		return
	}
	bind, leftover := st.bind, st.leftover
	if !bind() {
		ws.closeNow(CloseNoStatus)
		return
	}
	ws.bound = true
	ws.sess.srv.stats.websockets.Add(1)
	if len(leftover) > 0 {
		ws.onData(leftover)
	}
	if nc, ok := ws.conn.(*nbio.Conn); ok {
		// The loop reads under the connection's lock: taking it here orders
		// what this goroutine set up before the loop's first read.
		nc.Lock()
		nc.Unlock() //nolint:staticcheck // an empty critical section, for ordering
	}
}

type stdConn struct {
	net.Conn
	mu sync.Mutex
}

func (c *stdConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.Conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.Conn.Write(b)
}

func (ws *wsConn) readLoop(conn net.Conn) {
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			ws.onData(buf[:n])
		}
		if err != nil {
			ws.dead.Store(true)
			_ = conn.Close()
			ws.onTransportClosed(err)
			return
		}
	}
}

// write hands bytes to the connection.
func (ws *wsConn) write(b []byte) {
	if ws.dead.Load() || len(b) == 0 {
		return
	}
	ws.inflight.Add(int64(len(b)))
	if _, isStd := ws.conn.(*stdConn); isStd {
		_, err := ws.conn.Write(b)
		ws.inflight.Add(-int64(len(b)))
		if err != nil {
			ws.closeConn()
			return
		}
	} else if _, err := ws.conn.Write(b); err != nil {
		return // the loop closed the connection; its OnClose follows
	}
	ws.maybeFinish()
}

// written is the loop's report that n bytes reached the kernel. It runs
// with the loop's connection lock held: closing happens elsewhere.
func (ws *wsConn) written(n int) {
	if ws.inflight.Add(-int64(n)) == 0 && ws.closeAfterFlush.Load() {
		go ws.maybeFinish()
	}
}

// maybeFinish closes the TCP connection once it is to be closed and
// everything queued for it has been written.
func (ws *wsConn) maybeFinish() {
	if !ws.closeAfterFlush.Load() || ws.inflight.Load() != 0 {
		return
	}
	s := ws.sess
	s.mu.Lock()
	busy := s.ws == ws && (s.queuedBytesLocked() > 0 || s.queued)
	s.mu.Unlock()
	if !busy {
		ws.closeConn()
	}
}

func (ws *wsConn) closeConn() {
	if ws.dead.Swap(true) {
		return
	}
	_ = ws.conn.Close()
	if _, isStd := ws.conn.(*stdConn); !isStd {
		return
	}
	ws.onTransportClosed(net.ErrClosed)
}

// sendCloseLocked queues our close frame (with sess.mu held). The TCP
// connection closes when the client answers it, or after CloseTimeout.
func (ws *wsConn) sendCloseLocked(code uint16) {
	if ws.closeSent.Swap(true) {
		return
	}
	s := ws.sess
	s.spillLocked()
	s.pending = appendCloseFrame(s.pending, code)
	if !s.queued {
		s.queued = true
		s.srv.flush.push(s)
	}
	ws.closeTimer.Store(ws.sess.srv.wheel.AfterFunc(ws.sess.srv.opts.CloseTimeout, ws.closeConn))
}

// closeNow sends a close frame straight to a connection that is not (or no
// longer) the session's transport; it closes when answered, or after CloseTimeout.
func (ws *wsConn) closeNow(code uint16) {
	if ws.closeSent.Swap(true) {
		return
	}
	ws.closeTimer.Store(ws.sess.srv.wheel.AfterFunc(ws.sess.srv.opts.CloseTimeout, ws.closeConn))
	ws.write(appendCloseFrame(nil, code))
}

// onData runs on the event loop: parse frames, dispatch them.
func (ws *wsConn) onData(data []byte) {
	if ws.dead.Load() || !ws.bound || ws.stopped {
		return
	}
	if err := ws.fr.feed(data, ws); err != nil {
		var fe *FrameError
		code := uint16(CloseProtocolError)
		if errors.As(err, &fe) {
			code = fe.Code
		}
		ws.fail(code)
	}
}

// fail ends the connection after a protocol violation: a close frame with
// code, then the TCP close once it is written.
func (ws *wsConn) fail(code uint16) {
	ws.stopped = true
	ws.closeAfterFlush.Store(true)
	s := ws.sess
	s.mu.Lock()
	active := s.ws == ws && s.state == stateOpen
	if s.probe == ws {
		s.probe, s.upgrading = nil, false
	}
	s.mu.Unlock()
	if !active {
		ws.closeNow(code)
		ws.maybeFinish()
		return
	}
	reason := ReasonTransportError
	if code == CloseProtocolError || code == CloseInvalidPayload {
		reason = ReasonParseError
	}
	s.closeWith(reason, false, code)
	ws.maybeFinish()
}

// onTransportClosed runs once the TCP connection is gone.
func (ws *wsConn) onTransportClosed(err error) {
	ws.dead.Store(true)
	if t := ws.closeTimer.Load(); t != nil {
		t.Stop()
	}
	s := ws.sess
	s.mu.Lock()
	active := s.ws == ws
	if s.probe == ws {
		s.probe, s.upgrading = nil, false
		if s.aux != nil {
			s.aux.Stop()
		}
	}
	s.mu.Unlock()
	if active {
		reason := ReasonTransportClose
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			reason = ReasonTransportError
			s.srv.log.Debug("engine.io: connection failed", "sid", s.id, "err", err)
		}
		s.close(reason, false)
	}
}

// onMessage (frameHandler) gets one message from the client.
func (ws *wsConn) onMessage(binary bool, data []byte) {
	s := ws.sess
	s.mu.Lock()
	if s.probe == ws {
		ws.onProbeMessageLocked(binary, data) // unlocks
		return
	}
	active := s.ws == ws && s.state == stateOpen
	s.mu.Unlock()
	if !active {
		return
	}
	if binary {
		s.srv.h.OnMessage(s, data, true)
		return
	}
	p, err := DecodePacket(data)
	if err != nil {
		s.close(ReasonParseError, false)
		return
	}
	s.onPacket(p)
}

// onProbeMessageLocked runs the upgrade: "2probe" is answered "3probe" and
// releases a waiting poll with a noop; "5" switches the session to this
// connection; anything else ends the attempt. Called with s.mu held; unlocks.
func (ws *wsConn) onProbeMessageLocked(binary bool, data []byte) {
	s := ws.sess
	switch {
	case !binary && string(data) == "2probe":
		s.probed = true
		if len(s.pending) == 0 {
			s.wakePollLocked()
		}
		s.mu.Unlock()
		ws.write(appendPacketFrame(nil, PacketPong, []byte("probe")))
	case !binary && string(data) == "5":
		s.probe, s.upgrading = nil, false
		if s.aux != nil {
			s.aux.Stop()
		}
		s.transport = transportWebSocket
		s.ws = ws
		s.upgradedAt.Store(time.Now().UnixNano())
		s.wakePollLocked()
		if len(s.pending) > 0 && !s.queued {
			s.queued = true
			s.srv.flush.push(s)
		}
		s.mu.Unlock()
		s.srv.stats.upgrades.Add(1)
	default:
		s.probe, s.upgrading = nil, false
		if s.aux != nil {
			s.aux.Stop()
		}
		s.mu.Unlock()
		ws.closeNow(CloseNormal)
	}
}

// onUpgradeTimeout ends an upgrade the client did not complete in time.
func (s *Session) onUpgradeTimeout() {
	s.mu.Lock()
	if s.aux.Armed() || !s.upgrading || s.probe == nil {
		s.mu.Unlock()
		return
	}
	probe := s.probe
	s.probe, s.upgrading = nil, false
	s.mu.Unlock()
	probe.closeNow(CloseNormal)
}

// onOversize (frameHandler) gets a message that was over MaxPayload.
func (ws *wsConn) onOversize(binary bool, prefix []byte, _ int64) {
	s := ws.sess
	s.mu.Lock()
	active := s.ws == ws && s.state == stateOpen
	s.mu.Unlock()
	if !active || !s.onOversize(prefix, binary) {
		ws.fail(CloseMessageTooBig)
	}
}

// onControl (frameHandler) answers pings and close frames.
func (ws *wsConn) onControl(op byte, payload []byte) {
	switch op {
	case opPing:
		ws.sendControl(appendFrame(nil, opPong, payload))
	case opClose:
		code := uint16(CloseNoStatus)
		if len(payload) >= 2 {
			code = uint16(payload[0])<<8 | uint16(payload[1])
		}
		ws.closeAfterFlush.Store(true)
		s := ws.sess
		s.mu.Lock()
		active := s.ws == ws && s.state == stateOpen
		s.mu.Unlock()
		if active {
			// The client closes: answer with its code, close once written.
			s.closeWith(ReasonTransportClose, false, code)
		} else if !ws.closeSent.Load() {
			ws.closeNow(code)
		}
		// Otherwise this answers our close frame: the handshake is done.
		ws.maybeFinish()
	}
}

// sendControl queues a control frame after the session's frames when this
// is the session's connection, or writes it directly otherwise.
func (ws *wsConn) sendControl(frame []byte) {
	s := ws.sess
	s.mu.Lock()
	if s.ws == ws && s.state == stateOpen {
		s.spillLocked()
		s.pending = append(s.pending, frame...)
		s.scheduleLocked()
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	ws.write(frame)
}

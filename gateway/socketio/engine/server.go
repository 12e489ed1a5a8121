package engine

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lesismal/nbio"
)

// Server is an Engine.IO (protocol 4) server: an http.Handler for the
// handshake, long-polling and the WebSocket upgrade, whose WebSocket
// connections then live on an event loop. See the package documentation.
type Server struct {
	opts Options
	h    Handler
	log  *slog.Logger

	wheel     *Wheel
	ownWheel  bool
	loop      *nbio.Engine
	flush     *flushQueue
	handshake string // the open packet's fixed tail (after the sid)
	wsOnly    string // the same for a WebSocket-only session (no upgrades)

	limits frameLimits

	mu       sync.RWMutex
	sessions map[string]*Session
	closed   atomic.Bool

	stats counters
}

// NewServer starts a server's event loop, flushers and (unless given) wheel.
// Close stops them.
func NewServer(o Options) (*Server, error) {
	opts, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:     opts,
		h:        opts.Handler,
		log:      opts.Logger,
		wheel:    opts.Wheel,
		sessions: make(map[string]*Session),
	}
	if s.wheel == nil {
		s.wheel, s.ownWheel = NewWheel(10*time.Millisecond, 4096), true
	}
	s.limits = frameLimits{limit: opts.MaxPayload, discard: opts.OversizeDiscard, prefix: opts.OversizePrefix}
	s.handshake = handshakeTail(opts, s.upgradesFrom(TransportPolling))
	s.wsOnly = handshakeTail(opts, nil)
	setLoopLogger(s.log)
	s.loop = nbio.NewEngine(nbio.Config{
		Name:           "engine.io",
		NPoller:        opts.Pollers,
		ReadBufferSize: 64 << 10,
	})
	s.loop.OnOpen(func(c *nbio.Conn) {
		if ws, ok := c.Session().(*wsConn); ok {
			ws.opened()
		}
	})
	s.loop.OnData(func(c *nbio.Conn, data []byte) {
		if ws, ok := c.Session().(*wsConn); ok {
			ws.onData(data)
		}
	})
	s.loop.OnClose(func(c *nbio.Conn, err error) {
		if ws, ok := c.Session().(*wsConn); ok {
			ws.onTransportClosed(err)
		}
	})
	s.loop.OnWrittenSize(func(c *nbio.Conn, _ []byte, n int) {
		if ws, ok := c.Session().(*wsConn); ok {
			ws.written(n)
		}
	})
	if err := s.loop.Start(); err != nil {
		if s.ownWheel {
			s.wheel.Stop()
		}
		return nil, err
	}
	s.flush = newFlushQueue(opts.Flushers)
	return s, nil
}

// Wheel is the timing wheel the server runs its timers on.
func (s *Server) Wheel() *Wheel { return s.wheel }

// Options returns the server's options with defaults applied.
func (s *Server) Options() Options { return s.opts }

func handshakeTail(o Options, upgrades []string) string {
	var b strings.Builder
	b.WriteString(`","upgrades":[`)
	for i, u := range upgrades {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + u + `"`)
	}
	b.WriteString(`],"pingInterval":`)
	b.WriteString(itoa(int64(o.PingInterval / time.Millisecond)))
	b.WriteString(`,"pingTimeout":`)
	b.WriteString(itoa(int64(o.PingTimeout / time.Millisecond)))
	b.WriteString(`,"maxPayload":`)
	b.WriteString(itoa(int64(o.MaxPayload)))
	b.WriteString(`}`)
	return b.String()
}

func (s *Server) upgradesFrom(transport string) []string {
	if s.opts.DisableUpgrades || transport != TransportPolling || !s.allows(TransportWebSocket) {
		return nil
	}
	return []string{TransportWebSocket}
}

func (s *Server) allows(transport string) bool {
	for _, t := range s.opts.Transports {
		if t == transport {
			return true
		}
	}
	return false
}

// Close closes every session with "server shutting down" (a WebSocket gets
// its queued frames and a close frame 1001, a waiting poll its queued packets
// and the close packet; a polling session with no poll waiting is dropped, as
// Node does), waits for the WebSocket closes (CloseTimeout at most), and stops
// the event loop, the flushers and the wheel it made. New requests are refused.
func (s *Server) Close(ctx context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	s.mu.RLock()
	all := make([]*Session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		all = append(all, ss)
	}
	s.mu.RUnlock()
	for _, ss := range all {
		ss.close(ReasonServerShutdown, true)
	}
	// Give graceful closes their time: wait until every session is gone.
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	deadline := time.Now().Add(s.opts.CloseTimeout + time.Second)
	for time.Now().Before(deadline) {
		s.mu.RLock()
		n := len(s.sessions)
		s.mu.RUnlock()
		if n == 0 {
			break
		}

		select {
		case <-ctx.Done():
			deadline = time.Now()
		case <-t.C:
		}
	}
	s.flush.stop()
	err := s.loop.Shutdown(ctx)
	if s.ownWheel {
		s.wheel.Stop()
	}
	return err
}

// Session returns the open session with this id, or nil.
func (s *Server) Session(id string) *Session {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.sessions[id]
}

func (s *Server) remove(ss *Session) {
	s.mu.Lock()
	if s.sessions[ss.id] == ss {
		delete(s.sessions, ss.id)
	}
	s.mu.Unlock()
}

// ServeHTTP handles an Engine.IO request: handshake, poll, data or upgrade.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.opts.CORS != nil && s.opts.CORS.apply(w, r) {
		return
	}
	upgrade := r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
	abort := abortRequest
	if upgrade {
		abort = abortUpgrade
	}
	if s.closed.Load() {
		abort(w, ErrBadRequest, "")
		return
	}
	q := r.URL.RawQuery
	transport := queryValue(q, "transport")
	if !s.allows(transport) {
		abort(w, ErrUnknownTransport, "")
		return
	}
	if !validHeaderValue(r.Header.Get("Origin")) {
		abort(w, ErrBadRequest, "")
		return
	}
	if s.opts.AllowRequest != nil {
		if err := s.opts.AllowRequest(r); err != nil {
			s.stats.refused.Add(1)
			abort(w, ErrForbidden, err.Error())
			return
		}
	}
	sid := queryValue(q, "sid")
	if sid != "" {
		ss := s.Session(sid)
		if ss == nil {
			abort(w, ErrUnknownSID, "")
			return
		}
		if upgrade {
			if transport != TransportWebSocket {
				s.acceptThenClose(w, r)
				return
			}
			s.upgrade(w, r, ss)
			return
		}
		if ss.transportName() != transport {
			abort(w, ErrBadRequest, "")
			return
		}
		switch r.Method {
		case http.MethodGet:
			ss.servePoll(w, r)
		case http.MethodPost:
			ss.serveData(w, r)
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
		return
	}
	if r.Method != http.MethodGet {
		abort(w, ErrBadHandshakeMethod, "")
		return
	}
	if transport == TransportWebSocket && !upgrade {
		abort(w, ErrBadRequest, "")
		return
	}
	if queryValue(q, "EIO") != "4" {
		abort(w, ErrUnsupportedVersion, "")
		return
	}
	if upgrade {
		s.openWebSocket(w, r)
		return
	}
	ss := s.newSession(r, TransportPolling)
	if ss == nil {
		abortRequest(w, ErrBadRequest, "")
		return
	}
	ss.servePoll(w, r)
}

// newSession registers a session and queues its open packet.
func (s *Server) newSession(r *http.Request, transport string) *Session {
	ss := &Session{srv: s, id: newID(), remoteAddr: remoteIP(r.RemoteAddr)}
	ss.keepRequest(r, s.opts.KeepHeaders, s.opts.KeepQuery)
	ss.hb.Init(s.wheel, ss.onHeartbeat)
	if transport == TransportWebSocket {
		ss.transport = transportWebSocket
	}
	tail := s.handshake
	if transport == TransportWebSocket {
		tail = s.wsOnly
	}
	open := make([]byte, 0, 9+len(ss.id)+len(tail))
	open = append(open, `{"sid":"`...)
	open = append(open, ss.id...)
	open = append(open, tail...)
	ss.pending = appendPacketFrame(getBuf(), PacketOpen, open)
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return nil
	}
	s.sessions[ss.id] = ss
	s.mu.Unlock()
	s.stats.opened.Add(1)
	ss.hb.Reset(s.opts.PingInterval)
	s.h.OnOpen(ss)
	return ss
}

// newID makes a session id as Node's base64id does: 15 random bytes, base64url.
func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.URLEncoding.EncodeToString(b[:])
}

// NewID makes a random id of 20 URL-safe characters (used for Socket.IO
// socket ids and private session ids too).
func NewID() string { return newID() }

func remoteIP(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// queryValue returns the first value of key in a raw query, unescaped,
// without building a map.
func queryValue(raw, key string) string {
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(part, "=")
		if k != key {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			if u, err := url.QueryUnescape(v); err == nil {
				return u
			}
		}
		return v
	}
	return ""
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// Batch runs fn with the writes it queues held until it returns, so that
// each connection gets what fn sent it in one write: for a loop that sends
// many broadcasts at once. fn must be short and must not block.
func (s *Server) Batch(fn func()) {
	s.flush.hold()
	defer s.flush.release()
	fn()
}

package socketio

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fitmate/commserver/gateway/socketio/engine"
)

// Server is a Socket.IO (protocol 5) server on the project's Engine.IO
// server. Mount it (ServeHTTP) at the path clients use, "/socket.io/" by
// default. Register namespaces and handlers before serving.
type Server struct {
	opts Options
	log  logger
	eng  *engine.Server
	pool *workerPool

	nspMu sync.RWMutex
	nsps  map[string]*Namespace
	root  *Namespace

	closed atomic.Bool
	stats  counters
}

type logger = interface {
	Debug(string, ...any)
	Info(string, ...any)
	Warn(string, ...any)
	Error(string, ...any)
}

// NewServer makes a server with the main namespace "/" registered. Close
// releases it.
func NewServer(o Options) (*Server, error) {
	opts := o.withDefaults()
	s := &Server{opts: opts, log: opts.Logger, nsps: make(map[string]*Namespace)}
	eng, err := engine.NewServer(engine.Options{
		Handler:        engineHandler{s},
		Logger:         opts.Logger,
		PingInterval:   opts.PingInterval,
		PingTimeout:    opts.PingTimeout,
		UpgradeTimeout: opts.UpgradeTimeout,
		CloseTimeout:   opts.CloseTimeout,
		MaxPayload:     opts.MaxPayload,
		MaxBacklog:     opts.MaxBacklog,
		Transports:     opts.Transports,
		CORS:           opts.CORS,
		AllowRequest:   opts.AllowRequest,
		KeepHeaders:    opts.KeepHeaders,
		KeepQuery:      opts.KeepQuery,
		Wheel:          opts.Wheel,
		Pollers:        opts.Pollers,
		Flushers:       opts.Flushers,
	})
	if err != nil {
		return nil, err
	}
	s.eng = eng
	s.pool = newWorkerPool(opts.Workers, opts.MailboxSize, 2*time.Second, s.runJob)
	s.root = s.Of("/")
	return s, nil
}

// ServeHTTP serves Engine.IO requests (handshake, polling, WebSocket upgrade).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.eng.ServeHTTP(w, r) }

// Engine is the Engine.IO server underneath.
func (s *Server) Engine() *engine.Server { return s.eng }

// Batch runs fn, which broadcasts, with the writes it queues held until it
// returns: each connection gets what fn sent it in one write. For a loop
// that sends many broadcasts at once; fn must be short and must not block.
func (s *Server) Batch(fn func()) { s.eng.Batch(fn) }

// Of returns the namespace name, registering it the first time.
func (s *Server) Of(name string) *Namespace {
	if name == "" {
		name = "/"
	}
	s.nspMu.Lock()
	defer s.nspMu.Unlock()
	if n := s.nsps[name]; n != nil {
		return n
	}
	n := newNamespace(s, name)
	s.nsps[name] = n
	return n
}

func (s *Server) namespace(name string) *Namespace {
	s.nspMu.RLock()
	defer s.nspMu.RUnlock()
	return s.nsps[name]
}

// Use adds a middleware to the main namespace.
func (s *Server) Use(m Middleware) { s.root.Use(m) }

// OnConnection adds a connection handler to the main namespace.
func (s *Server) OnConnection(f ConnectionHandler) { s.root.OnConnection(f) }

// OnEvent sets an event handler of the main namespace.
func (s *Server) OnEvent(event string, f EventHandler) { s.root.OnEvent(event, f) }

// OnAnyEvent sets the main namespace's handler of events without one.
func (s *Server) OnAnyEvent(f AnyEventHandler) { s.root.OnAnyEvent(f) }

// OnDisconnect adds a disconnect handler to the main namespace.
func (s *Server) OnDisconnect(f DisconnectHandler) { s.root.OnDisconnect(f) }

// To selects sockets of the main namespace by room.
func (s *Server) To(rooms ...string) BroadcastOperator { return s.root.To(rooms...) }

// In is To.
func (s *Server) In(rooms ...string) BroadcastOperator { return s.root.To(rooms...) }

// Except leaves rooms out of a broadcast on the main namespace.
func (s *Server) Except(rooms ...string) BroadcastOperator { return s.root.Except(rooms...) }

// Emit sends an event to every socket of the main namespace.
func (s *Server) Emit(event string, args ...any) error { return s.root.Emit(event, args...) }

// AfterFunc runs f on its own goroutine after d (unless stopped), on the
// server's timing wheel: no goroutine or runtime timer while it waits.
func (s *Server) AfterFunc(d time.Duration, f func()) *Timer {
	return s.eng.Wheel().AfterFunc(d, func() { go f() })
}

// Close closes every connection (the clients see "transport close" and
// reconnect elsewhere; disconnect handlers get "server shutting down"),
// waits for the handlers to finish or ctx to end, and releases the server.
func (s *Server) Close(ctx context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	err := s.eng.Close(ctx)
	if werr := s.pool.wait(ctx); werr != nil && err == nil {
		err = werr
	}
	s.nspMu.RLock()
	for _, n := range s.nsps {
		if cerr := n.adapter.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	s.nspMu.RUnlock()
	return err
}

// submit queues fn on the client's queue; a bounded submission over
// MailboxSize closes the connection at the transport level.
func (s *Server) submit(c *client, sock *Socket, fn func(), bounded bool) bool {
	if s.pool.submit(&c.mb, fn, bounded) {
		return true
	}
	if c.cut.Swap(true) {
		return true // already being closed
	}
	s.stats.overflows.Add(1)
	s.log.Warn("socket.io: client sends faster than its handlers run, closing its connection",
		"sid", sock.id, "nsp", sock.nsp.name, "mailbox", s.opts.MailboxSize)
	go c.closeTransport(ReasonTransportError)
	return true
}

// runJob runs one queued job; a panic that escaped guard is logged.
func (s *Server) runJob(fn func()) {
	defer func() {
		if r := recover(); r != nil {
			s.stats.panics.Add(1)
			s.log.Error("socket.io: job panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	fn()
}

var errHandlerPanicked = errors.New("internal error")

// guard runs an application callback for a socket, turning a panic into a
// logged error.
func (s *Server) guard(sock *Socket, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.stats.panics.Add(1)
			s.log.Error("socket.io: handler panicked", "sid", sock.id, "nsp", sock.nsp.name,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = errHandlerPanicked
		}
	}()
	return f()
}

type counters struct {
	connects, disconnects, refused, overflows, panics, violations atomic.Int64
	broadcasts, deliveries                                        atomic.Int64
}

// Stats are a server's counters, for metrics.
type Stats struct {
	Engine      engine.Stats
	Sockets     int   // connected sockets, all namespaces
	Connects    int64 // sockets connected
	Disconnects int64 // sockets disconnected
	Refused     int64 // CONNECTs refused by middleware
	Overflows   int64 // connections closed because their queue was full
	Panics      int64 // handler panics recovered
	Violations  int64 // connections closed for a protocol violation
	Broadcasts  int64 // broadcasts delivered locally
	Deliveries  int64 // packets those broadcasts delivered
	Workers     int   // handler goroutines now
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Engine: s.eng.Stats(), Connects: s.stats.connects.Load(), Disconnects: s.stats.disconnects.Load(),
		Refused: s.stats.refused.Load(), Overflows: s.stats.overflows.Load(), Panics: s.stats.panics.Load(),
		Violations: s.stats.violations.Load(), Broadcasts: s.stats.broadcasts.Load(),
		Deliveries: s.stats.deliveries.Load(), Workers: s.pool.workers(),
	}
	s.nspMu.RLock()
	for _, n := range s.nsps {
		n.eachSocket(func(sock *Socket) {
			if sock.Connected() {
				st.Sockets++
			}
		})
	}
	s.nspMu.RUnlock()
	return st
}

func newID() string { return engine.NewID() }

package socketio

import (
	"context"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/fitmate/commserver/gateway/socketio/engine"
)

// Middleware runs for every CONNECT to a namespace, in the order added,
// before the connection handlers, on the socket's queue (it may block). An
// error refuses the connection with CONNECT_ERROR: a *ConnectError gives its
// message and data; another error its text. It runs on recovered
// connections too (Socket.Recovered tells them apart).
type Middleware func(s *Socket) error

// EventHandler handles one client event. args are the event's arguments
// decoded from JSON (objects map[string]any, arrays []any, numbers float64,
// binary attachments []byte); ack is nil unless the client asked for an
// acknowledgement, and may be called once, from any goroutine.
type EventHandler func(s *Socket, args []any, ack AckFunc)

// AnyEventHandler handles the events that have no EventHandler.
type AnyEventHandler func(s *Socket, event string, args []any, ack AckFunc)

// AckFunc answers a client's acknowledgement; calls after the first do nothing.
type AckFunc func(args ...any)

// ConnectionHandler runs once a socket is connected (the CONNECT answer is sent).
type ConnectionHandler func(s *Socket)

// DisconnectHandler runs once when a connected socket disconnects, after
// its connection handlers, with the reason (the Reason constants).
type DisconnectHandler func(s *Socket, reason string)

// handlers is a namespace's handler table, replaced whole on every
// registration (registration is rare, lookups are per event).
type handlers struct {
	middleware []Middleware
	connection []ConnectionHandler
	disconnect []DisconnectHandler
	events     map[string]EventHandler
	any        AnyEventHandler
	serverSide map[string]func(args []any)
}

// Namespace is a Socket.IO namespace: its handler table, its sockets on this
// node and its adapter. Only namespaces made with Server.Of are served; a
// CONNECT to any other gets "Invalid namespace".
type Namespace struct {
	srv     *Server
	name    string
	adapter Adapter

	regMu sync.Mutex
	table atomic.Pointer[handlers]

	mu      sync.RWMutex
	sockets map[string]*Socket // local sockets, connecting or connected

	ackSeq atomic.Uint64
}

func newNamespace(srv *Server, name string) *Namespace {
	n := &Namespace{srv: srv, name: name, sockets: make(map[string]*Socket)}
	n.table.Store(&handlers{events: map[string]EventHandler{}, serverSide: map[string]func([]any){}})
	n.adapter = srv.opts.Adapter(n)
	return n
}

// Name is the namespace's name ("/" for the main one).
func (n *Namespace) Name() string { return n.name }

// Server is the namespace's server.
func (n *Namespace) Server() *Server { return n.srv }

// Adapter is the namespace's adapter.
func (n *Namespace) Adapter() Adapter { return n.adapter }

func (n *Namespace) update(f func(h *handlers)) {
	n.regMu.Lock()
	defer n.regMu.Unlock()
	old := n.table.Load()
	h := *old
	h.middleware = append([]Middleware(nil), old.middleware...)
	h.connection = append([]ConnectionHandler(nil), old.connection...)
	h.disconnect = append([]DisconnectHandler(nil), old.disconnect...)
	h.events = maps.Clone(old.events)
	h.serverSide = maps.Clone(old.serverSide)
	f(&h)
	n.table.Store(&h)
}

// Use adds a middleware.
func (n *Namespace) Use(m Middleware) {
	n.update(func(h *handlers) { h.middleware = append(h.middleware, m) })
}

// OnConnection adds a connection handler.
func (n *Namespace) OnConnection(f ConnectionHandler) {
	n.update(func(h *handlers) { h.connection = append(h.connection, f) })
}

// OnDisconnect adds a disconnect handler.
func (n *Namespace) OnDisconnect(f DisconnectHandler) {
	n.update(func(h *handlers) { h.disconnect = append(h.disconnect, f) })
}

// OnEvent sets the handler of a client event (replacing an earlier one).
func (n *Namespace) OnEvent(event string, f EventHandler) {
	n.update(func(h *handlers) { h.events[event] = f })
}

// OnAnyEvent sets the handler of the events that have none of their own.
func (n *Namespace) OnAnyEvent(f AnyEventHandler) { n.update(func(h *handlers) { h.any = f }) }

// OnServerSideEvent sets the handler of an event another node sent with
// ServerSideEmit (it runs on the adapter's goroutine: do not block).
func (n *Namespace) OnServerSideEvent(event string, f func(args []any)) {
	n.update(func(h *handlers) { h.serverSide[event] = f })
}

// HandleServerSideEvent is for adapters: it runs the handler of an event
// another node sent.
func (n *Namespace) HandleServerSideEvent(event string, args []any) {
	if f := n.table.Load().serverSide[event]; f != nil {
		f(args)
	}
}

// NextAckID reserves an acknowledgement id of this namespace on this node,
// for an adapter that delivers another node's BroadcastWithAck here.
func (n *Namespace) NextAckID() uint64 { return n.ackSeq.Add(1) - 1 }

// ServerSideEmit sends an event to this namespace on the other nodes.
func (n *Namespace) ServerSideEmit(event string, args ...any) error {
	return n.adapter.ServerSideEmit(event, args)
}

// Socket returns the local connected socket with this id, or nil.
func (n *Namespace) Socket(id string) *Socket {
	s := n.socketByID(id)
	if s == nil || !s.Connected() {
		return nil
	}
	return s
}

// Sockets returns the local connected sockets.
func (n *Namespace) Sockets() []*Socket {
	var out []*Socket
	n.eachSocket(func(s *Socket) {
		if s.Connected() {
			out = append(out, s)
		}
	})
	return out
}

func (n *Namespace) socketByID(id string) *Socket {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.sockets[id]
}

func (n *Namespace) eachSocket(f func(*Socket)) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	for _, s := range n.sockets {
		f(s)
	}
}

func (n *Namespace) add(s *Socket) {
	n.mu.Lock()
	n.sockets[s.id] = s
	n.mu.Unlock()
}

func (n *Namespace) remove(s *Socket) {
	n.mu.Lock()
	if n.sockets[s.id] == s {
		delete(n.sockets, s.id)
	}
	n.mu.Unlock()
}

func (n *Namespace) op() BroadcastOperator { return BroadcastOperator{nsp: n} }

// To selects the sockets in rooms (more with further To calls).
func (n *Namespace) To(rooms ...string) BroadcastOperator { return n.op().To(rooms...) }

// In is To.
func (n *Namespace) In(rooms ...string) BroadcastOperator { return n.op().To(rooms...) }

// Except leaves out the sockets in rooms.
func (n *Namespace) Except(rooms ...string) BroadcastOperator { return n.op().Except(rooms...) }

// Local keeps a broadcast on this node.
func (n *Namespace) Local() BroadcastOperator { return n.op().Local() }

// Volatile makes a broadcast droppable for clients that cannot take it now.
func (n *Namespace) Volatile() BroadcastOperator { return n.op().Volatile() }

// Emit sends an event to every socket of the namespace.
func (n *Namespace) Emit(event string, args ...any) error { return n.op().Emit(event, args...) }

// EmitWithAck sends an event to every socket and collects their answers.
func (n *Namespace) EmitWithAck(ctx context.Context, event string, args ...any) ([][]any, error) {
	return n.op().EmitWithAck(ctx, event, args...)
}

// SocketsJoin makes every socket join rooms.
func (n *Namespace) SocketsJoin(rooms ...string) error { return n.op().SocketsJoin(rooms...) }

// SocketsLeave makes every socket leave rooms.
func (n *Namespace) SocketsLeave(rooms ...string) error { return n.op().SocketsLeave(rooms...) }

// DisconnectSockets disconnects every socket.
func (n *Namespace) DisconnectSockets(close bool) error { return n.op().DisconnectSockets(close) }

// FetchSockets describes every socket.
func (n *Namespace) FetchSockets(ctx context.Context) ([]RemoteSocket, error) {
	return n.op().FetchSockets(ctx)
}

// connect runs a CONNECT on the socket's queue: recovery, middleware, then
// the answer and the connection handlers.
func (n *Namespace) connect(s *Socket, auth map[string]any) {
	srv := n.srv
	if !srv.opts.DisableRecovery {
		pid, _ := auth["pid"].(string)
		offset, _ := auth["offset"].(string)
		if pid != "" && offset != "" {
			sess, err := n.adapter.RestoreSession(s, pid, offset)
			if err != nil {
				srv.log.Warn("socket.io: restoring a session failed", "nsp", n.name, "err", err)
			}
			if sess != nil && !s.recovered {
				// An adapter that did not admit the socket itself.
				s.restore(&sess.SessionToPersist)
				n.adapter.AddAll(s, sess.Rooms)
			}
			if sess != nil && len(sess.Missed) > 0 {
				// The missed broadcasts go first, before anything held since.
				s.mu.Lock()
				s.held = append(append([]*engine.Message(nil), sess.Missed...), s.held...)
				s.mu.Unlock()
			}
		}
	}
	if !s.recovered {
		if !srv.opts.DisableRecovery {
			s.pid = newID()
		}
		n.add(s)
	}
	if s.state.Load() != stateConnecting {
		s.abandon()
		return
	}
	for _, m := range n.table.Load().middleware {
		if err := srv.guard(s, func() error { return m(s) }); err != nil {
			s.refuse(err)
			return
		}
	}
	if !s.establish() {
		s.abandon()
		return
	}
	srv.stats.connects.Add(1)
	s.client.connected()
	for _, f := range n.table.Load().connection {
		srv.guard(s, func() error { f(s); return nil })
	}
	if !srv.opts.KeepAuth {
		s.mu.Lock()
		s.auth = nil
		s.mu.Unlock()
	}
}

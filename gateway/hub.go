// Package gateway is the server's transport: Socket.IO (through the hub, on
// the project's own layer in gateway/socketio) and REST (through Gin) on one
// port. It authenticates callers, turns events and requests into domain
// calls, and maps domain errors to acknowledgements and HTTP statuses in one
// table (errors.go). No other package imports Socket.IO or Gin.
//
// Files by concern: hub.go (the Socket.IO server and the publishers),
// auth.go (tokens, the handshake middleware), lifecycle.go (a socket's
// connection and teardown, presence), dispatch.go (what every event gets),
// events.go (the events), ratelimit.go, errors.go, and the REST routes.
package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/chat"
	"github.com/fitmate/commserver/gateway/socketio"
	"github.com/fitmate/commserver/notify"
)

// Room names inside Socket.IO. Chat rooms are prefixed so that no room id a
// client chooses can collide with a user's room or the admin room.
func chatRoom(id string) string { return "chat:" + id }
func userRoom(id string) string { return "user:" + id }

const adminRoom = chat.AdminRoom

// HubOptions configure the Socket.IO server.
type HubOptions struct {
	CORSOrigins     []string
	MaxPayloadBytes int64
	PingInterval    time.Duration
	PingTimeout     time.Duration
	// RecoveryWindow is how long a disconnected socket's session is kept
	// for connection state recovery (0: recovery off).
	RecoveryWindow time.Duration
	// Adapter makes the namespace's adapter (nil: in memory, one instance).
	Adapter func(nsp *socketio.Namespace) socketio.Adapter
}

// Hub owns the Socket.IO server. It is the real-time fan-out that the domain
// packages publish through (chat.Publisher, notify.Publisher), built first in
// run and handed to both producers and the event handlers. Every publish is a
// broadcast through the namespace's adapter, so a cluster adapter makes it
// reach every instance without changing callers.
type Hub struct {
	io  *socketio.Server
	log *slog.Logger

	deps   SocketDeps
	limits *eventLimits // client events per user
	logs   *logLimiter  // log lines that a flood could repeat

	announcing    sync.Mutex
	announceQueue []presenceChange // presence changes not announced yet, oldest first
	announcingNow bool             // announceLoop is running

	draining  chan struct{} // closed when shutdown starts: /readyz answers 503
	drainOnce sync.Once
	closing   chan struct{} // closed when sockets close: new events are refused
	closeOne  sync.Once
	trackMu   sync.Mutex     // orders inflight.Add against closing
	inflight  sync.WaitGroup // events being handled (a sendMessage until its write is acknowledged)
}

var (
	_ chat.Publisher      = (*Hub)(nil)
	_ chat.BatchPublisher = (*Hub)(nil)
	_ notify.Publisher    = (*Hub)(nil)
)

// connectTooLarge answers a CONNECT over the payload limit: its auth holds
// a token far over any JWT, and a bare close would make socket.io-client
// retry it forever.
var connectTooLarge = &socketio.ConnectError{Message: "the CONNECT packet is over the payload limit: is the token that long?",
	Data: map[string]any{"code": string(CodeTokenTooLong)}}

// NewHub builds the Socket.IO server: both transports (polling with upgrade,
// and WebSocket only), an exact-match origin allowlist with credentials,
// the payload cap, heartbeat and recovery window of opts.
func NewHub(opts HubOptions, log *slog.Logger) (*Hub, error) {
	origins := append([]string(nil), opts.CORSOrigins...)
	so := socketio.Options{
		Logger:       log,
		PingInterval: opts.PingInterval,
		PingTimeout:  opts.PingTimeout,
		MaxPayload:   int(opts.MaxPayloadBytes),
		CORS:         &socketio.CORS{Origins: origins, Credentials: true, Headers: []string{"Content-Type", "Authorization"}},
		// A browser on a foreign origin is refused on polling and on the
		// WebSocket upgrade alike. Requests without an Origin header (native
		// apps, servers) are not cross-origin: the token authenticates them.
		AllowRequest: func(r *http.Request) error {
			if o := r.Header.Get("Origin"); o != "" && !slices.Contains(origins, o) {
				// The origin is the caller's text: quoted, and cut, in the answer.
				return commserver.Errorf(commserver.CodeForbidden, "origin %q is not allowed", commserver.Truncate(o, 100))
			}
			return nil
		},
		KeepHeaders:     []string{authorizationHeader}, // the handshake's Bearer fallback
		ConnectTooLarge: connectTooLarge,
		Adapter:         opts.Adapter,
	}
	if opts.RecoveryWindow > 0 {
		so.Recovery.MaxDisconnection = opts.RecoveryWindow
	} else {
		so.DisableRecovery = true
	}
	io, err := socketio.NewServer(so)
	if err != nil {
		return nil, err
	}
	return &Hub{io: io, log: log, draining: make(chan struct{}), closing: make(chan struct{})}, nil
}

// ServeHTTP serves /socket.io/.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.io.ServeHTTP(w, r) }

// PublishRoom emits to every socket in the chat room and, when alsoAdmins,
// in the admin room; a socket in both gets it once.
func (h *Hub) PublishRoom(_ context.Context, chatRoomID string, alsoAdmins bool, event string, payload any) error {
	op := h.io.To(chatRoom(chatRoomID))
	if alsoAdmins {
		op = op.To(adminRoom)
	}
	return op.Emit(event, payload)
}

// PublishUser emits to every socket of the user, on every tab and device.
func (h *Hub) PublishUser(_ context.Context, userID, event string, payload any) error {
	return h.io.To(userRoom(userID)).Emit(event, payload)
}

// Batch runs fn with the writes of what it publishes held until it
// returns: each connection gets them in one write (chat.BatchPublisher).
func (h *Hub) Batch(fn func()) { h.io.Batch(fn) }

// EvictFromRoom makes every socket of these users leave the chat room.
func (h *Hub) EvictFromRoom(_ context.Context, chatRoomID string, userIDs []string) error {
	rooms := make([]string, len(userIDs))
	for i, u := range userIDs {
		rooms[i] = userRoom(u)
	}
	return h.io.In(rooms...).SocketsLeave(chatRoom(chatRoomID))
}

// Connected is how many sockets this instance serves.
func (h *Hub) Connected() int { return h.io.Stats().Sockets }

// Stats are the Socket.IO layer's counters (for metrics).
func (h *Hub) Stats() socketio.Stats { return h.io.Stats() }

// Drain starts a shutdown: /readyz answers 503 so the load balancer sends
// new connections elsewhere, while current sockets keep working.
func (h *Hub) Drain() { h.drainOnce.Do(func() { close(h.draining) }) }

// Close ends every connection at the transport level, without Socket.IO's
// DISCONNECT packet: clients see "transport close" and reconnect by
// themselves (to this pod once it is back, or to another), whereas a
// server-side disconnect would strand the React app, which never calls
// connect() again. It waits for the handlers running (ctx bounds the wait).
func (h *Hub) Close(ctx context.Context) {
	h.Drain()
	h.closeOne.Do(func() {
		h.trackMu.Lock()
		close(h.closing)
		h.trackMu.Unlock()
		if err := h.io.Close(ctx); err != nil {
			h.log.Warn("socket.io close", "err", err)
		}
	})
}

// Wait blocks until the events in flight have finished or ctx is done.
func (h *Hub) Wait(ctx context.Context) error {
	h.trackMu.Lock() // no track() after closing is closed; Add cannot race Wait
	h.trackMu.Unlock()
	done := make(chan struct{})
	go func() { h.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// track counts an event in flight unless the server is closing.
func (h *Hub) track() bool {
	h.trackMu.Lock()
	defer h.trackMu.Unlock()
	select {
	case <-h.closing:
		return false
	default:
		h.inflight.Add(1)
		return true
	}
}

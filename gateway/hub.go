// Package gateway is the server's transport: Socket.IO (through the hub) and
// REST (through Gin) on one port. It authenticates callers, turns events and
// requests into domain calls, and maps domain errors to acknowledgements and
// HTTP statuses in one table (errors.go). No other package imports Socket.IO or Gin.
package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/fitmate/commserver/chat"
	"github.com/fitmate/commserver/notify"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// Room names inside Socket.IO. Chat rooms are prefixed so that no room id a
// client chooses can collide with a user's room or the admin room.
func chatRoom(id string) socket.Room { return socket.Room("chat:" + id) }
func userRoom(id string) socket.Room { return socket.Room("user:" + id) }

const adminRoom = socket.Room(chat.AdminRoom)

// HubOptions configure the Socket.IO server.
type HubOptions struct {
	CORSOrigins     []string
	MaxPayloadBytes int64
	PingInterval    time.Duration
	PingTimeout     time.Duration
}

// Hub owns the Socket.IO server. It is the real-time fan-out that the domain
// packages publish through (chat.Publisher, notify.Publisher), built first in
// run and handed to both producers and the event handlers. Rooms live in the
// Socket.IO adapter, so a cluster adapter makes every publish reach every
// instance without changing callers.
type Hub struct {
	io  *socket.Server
	log *slog.Logger

	deps     SocketDeps
	handlers map[string]handler // client events by name
	limits   *eventLimits       // client events per user
	logs     *logLimiter        // log lines that a flood could repeat

	draining  chan struct{} // closed when shutdown starts: /readyz answers 503
	drainOnce sync.Once
	closing   chan struct{} // closed when sockets close: new events are refused
	closeOne  sync.Once
	trackMu   sync.Mutex     // orders inflight.Add against closing
	inflight  sync.WaitGroup // events being handled
}

var (
	_ chat.Publisher   = (*Hub)(nil)
	_ notify.Publisher = (*Hub)(nil)
)

// NewHub builds the Socket.IO server: both transports (polling with upgrade,
// and WebSocket only), an exact-match CORS allowlist with credentials, the
// payload cap and heartbeat of opts.
func NewHub(opts HubOptions, log *slog.Logger) *Hub {
	o := socket.DefaultServerOptions()
	o.SetServeClient(false)
	o.SetPingInterval(opts.PingInterval)
	o.SetPingTimeout(opts.PingTimeout)
	o.SetMaxHttpBufferSize(opts.MaxPayloadBytes)
	o.SetTransports(types.NewSet[socket.TransportCtor](socket.Polling, &wsBuilder{}))
	o.SetAdapter(fastAdapterBuilder{})
	o.SetParser(newGateParser("/")) // connectgate.go: events sent right after CONNECT
	o.SetAllowUpgrades(true)
	o.SetCors(&types.Cors{
		Origin:         append([]string(nil), opts.CORSOrigins...),
		Credentials:    true,
		Methods:        []string{http.MethodGet, http.MethodPost, http.MethodOptions},
		AllowedHeaders: []string{"Content-Type", "Authorization"},
	})
	return &Hub{io: socket.NewServer(nil, o), log: log, draining: make(chan struct{}), closing: make(chan struct{})}
}

// Handler serves /socket.io/.
func (h *Hub) Handler() http.Handler { return h.io.ServeHandler(nil) }

// PublishRoom emits to every socket in the chat room and, when alsoAdmins,
// in the admin room; a socket in both gets it once.
func (h *Hub) PublishRoom(_ context.Context, chatRoomID string, alsoAdmins bool, event string, payload any) error {
	rooms := []socket.Room{chatRoom(chatRoomID)}
	if alsoAdmins {
		rooms = append(rooms, adminRoom)
	}
	return h.io.To(rooms...).Emit(event, payload)
}

// PublishUser emits to every socket of the user, on every tab and device.
func (h *Hub) PublishUser(_ context.Context, userID, event string, payload any) error {
	return h.io.To(userRoom(userID)).Emit(event, payload)
}

// EvictFromRoom makes every socket of these users leave the chat room.
func (h *Hub) EvictFromRoom(_ context.Context, chatRoomID string, userIDs []string) error {
	rooms := make([]socket.Room, len(userIDs))
	for i, u := range userIDs {
		rooms[i] = userRoom(u)
	}
	h.io.In(rooms...).SocketsLeave(chatRoom(chatRoomID))
	return nil
}

// Connected is how many sockets this instance serves.
func (h *Hub) Connected() int {
	n := 0
	h.io.Sockets().Sockets().Range(func(socket.SocketId, *socket.Socket) bool { n++; return true })
	return n
}

// Drain starts a shutdown: /readyz answers 503 so the load balancer sends
// new connections elsewhere, while current sockets keep working.
func (h *Hub) Drain() { h.drainOnce.Do(func() { close(h.draining) }) }

// Close ends every connection at the transport level, without Socket.IO's
// DISCONNECT packet: clients see "transport close" and reconnect by
// themselves (to this pod once it is back, or to another), whereas a
// server-side disconnect would strand the React app, which never calls
// connect() again.
func (h *Hub) Close() {
	h.Drain()
	h.closeOne.Do(func() {
		h.trackMu.Lock()
		close(h.closing)
		h.trackMu.Unlock()
		done := make(chan struct{})
		h.io.Close(func(error) { close(done) })
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			h.log.Warn("socket.io close did not finish in 2s")
		}
	})
}

// closeAfterFlush closes a socket's connection once what was emitted to it
// has been written (or after maxWait). zishang520/socket.io's Disconnect(true)
// closes at once and drops frames still queued for the transport; this is
// our workaround.
func closeAfterFlush(s *socket.Socket, maxWait time.Duration) {
	deadline := time.Now().Add(maxWait)
	go func() {
		for time.Now().Before(deadline) {
			if t := s.Conn().Transport(); t != nil && t.Writable() {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond) // the frame handed over last may still be in the kernel's hands
		s.Conn().Close(false)
	}()
}

package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"time"
)

// Transport names, as in the "transport" query parameter.
const (
	TransportPolling   = "polling"
	TransportWebSocket = "websocket"
)

// Handler receives a server's sessions. Calls for one session never overlap
// and come in order: OnOpen, then messages, then OnClose exactly once.
// OnMessage runs on the event loop or on a long-polling request's goroutine:
// it must not block (decode, then hand the work to a queue).
type Handler interface {
	// OnOpen is called once the open packet has been queued.
	OnOpen(s *Session)
	// OnMessage gets one message packet. data is valid only during the call.
	OnMessage(s *Session, data []byte, binary bool)
	// OnOversize gets a message over MaxPayload that was skipped: prefix
	// holds its first bytes (OversizePrefix of them at most). Returning true
	// keeps the session (the handler answered it); false closes it.
	OnOversize(s *Session, prefix []byte, binary bool) (keep bool)
	// OnClose is called once, when the session stops accepting sends.
	OnClose(s *Session, reason string)
}

// CORS configures the Cross-Origin Resource Sharing headers of the polling
// transport, as Node's cors middleware does for engine.io.
type CORS struct {
	// Origins allowed; "*" allows any origin (without credentials).
	Origins []string
	// Credentials adds Access-Control-Allow-Credentials: true (needs exact origins).
	Credentials bool
	// Headers allowed in a preflight; empty reflects the request's.
	Headers []string
	// MaxAge of a preflight answer; zero sends none.
	MaxAge time.Duration
}

// Options configure a Server. The zero value of a field means its default.
type Options struct {
	// Handler receives the sessions (required).
	Handler Handler
	// Logger for the engine's own events; never sees payloads.
	Logger *slog.Logger

	// PingInterval between two pings sent by the server (default 25 s).
	PingInterval time.Duration
	// PingTimeout to wait for the pong before closing (default 20 s).
	PingTimeout time.Duration
	// UpgradeTimeout for a polling session to complete its upgrade (default 10 s).
	UpgradeTimeout time.Duration
	// CloseTimeout bounds a graceful close: the WebSocket closing handshake,
	// or the last poll that collects queued packets (default 5 s).
	CloseTimeout time.Duration

	// MaxPayload is the largest message accepted, on both transports, and
	// the largest polling POST body (default 1,000,000 bytes, Node's default).
	MaxPayload int
	// OversizePrefix is how many bytes of an oversize message are kept for
	// OnOversize (default 512).
	OversizePrefix int
	// OversizeDiscard is the largest oversize message that is skipped and
	// reported; a larger one closes the connection at once (default 8 MiB).
	OversizeDiscard int64
	// MaxBacklog is the most bytes queued for one connection, counting the
	// event loop's own write buffer; above it the client is cut off (default 4 MiB).
	MaxBacklog int

	// Transports accepted (default both). Without "websocket" nothing upgrades.
	Transports []string
	// DisableUpgrades keeps polling sessions on polling.
	DisableUpgrades bool

	// CORS headers for polling; nil sends none.
	CORS *CORS
	// AllowRequest is asked about every Engine.IO request (handshake,
	// polling, upgrade); an error refuses it with 403 and {"code":4,"message":err}.
	AllowRequest func(r *http.Request) error
	// KeepHeaders lists the request headers a session keeps from its
	// handshake (read with Session.Header); others are not kept.
	KeepHeaders []string
	// KeepQuery lists the query parameters a session keeps from its handshake.
	KeepQuery []string

	// Wheel runs the engine's timers; nil makes one (10 ms resolution) that
	// Close stops.
	Wheel *Wheel
	// Pollers is the number of event-loop goroutines for WebSocket
	// connections (default 1).
	Pollers int
	// Flushers is the number of goroutines writing queued frames (default GOMAXPROCS).
	Flushers int
}

func (o *Options) withDefaults() (Options, error) {
	c := *o
	if c.Handler == nil {
		return c, errors.New("engine: Options.Handler is required")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.PingInterval, 25*time.Second)
	def(&c.PingTimeout, 20*time.Second)
	def(&c.UpgradeTimeout, 10*time.Second)
	def(&c.CloseTimeout, 5*time.Second)
	if c.MaxPayload <= 0 {
		c.MaxPayload = 1_000_000
	}
	if c.OversizePrefix <= 0 {
		c.OversizePrefix = 512
	}
	if c.OversizeDiscard <= 0 {
		c.OversizeDiscard = 8 << 20
	}
	if c.OversizeDiscard < int64(c.MaxPayload) {
		c.OversizeDiscard = int64(c.MaxPayload)
	}
	if c.MaxBacklog <= 0 {
		c.MaxBacklog = 4 << 20
	}
	if c.MaxBacklog < c.MaxPayload+64 {
		return c, fmt.Errorf("engine: MaxBacklog %d is below MaxPayload %d", c.MaxBacklog, c.MaxPayload)
	}
	if len(c.Transports) == 0 {
		c.Transports = []string{TransportPolling, TransportWebSocket}
	}
	for _, t := range c.Transports {
		if t != TransportPolling && t != TransportWebSocket {
			return c, fmt.Errorf("engine: unknown transport %q", t)
		}
	}
	if c.Pollers <= 0 {
		c.Pollers = 1
	}
	if c.Flushers <= 0 {
		c.Flushers = runtime.GOMAXPROCS(0)
	}
	return c, nil
}

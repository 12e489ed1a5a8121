package socketio

import (
	"log/slog"
	"net/http"
	"runtime"
	"time"
)

// Options configure a Server. The zero value of a field means its default;
// the zero Options is a server with socket.io's defaults and connection
// state recovery on.
type Options struct {
	// Logger for the layer's own events (refusals, cut-offs, handler
	// panics). It never sees auth payloads or event arguments.
	Logger *slog.Logger

	// Engine.IO: see engine.Options for each.
	PingInterval   time.Duration // default 25 s
	PingTimeout    time.Duration // default 20 s
	UpgradeTimeout time.Duration // default 10 s
	CloseTimeout   time.Duration // default 5 s
	MaxPayload     int           // default 1,000,000 bytes, both transports
	MaxBacklog     int           // default 4 MiB queued per connection, then cut off
	Transports     []string      // default polling and websocket
	CORS           *CORS         // nil: no CORS headers
	// AllowRequest is asked about every Engine.IO request; an error answers
	// 403 {"code":4,"message":err}. The product's origin gate goes here.
	AllowRequest func(r *http.Request) error
	KeepHeaders  []string // handshake headers a socket keeps (Socket.Header)
	KeepQuery    []string // handshake query parameters a socket keeps (Socket.Query)
	Pollers      int      // event-loop goroutines (default 1)
	Flushers     int      // write goroutines (default GOMAXPROCS)
	Wheel        *Wheel

	// ConnectTimeout closes a connection that joined no namespace in time (default 45 s).
	ConnectTimeout time.Duration
	// MaxAttachments per binary packet (default 10); more is a protocol error.
	MaxAttachments int
	// MailboxSize is how many received packets a connection may have waiting
	// for its handlers (default 256). A client that sends faster than its
	// handlers run is over it: its connection is closed at the transport level
	// (it reconnects, with connection state recovery when on).
	MailboxSize int
	// Workers is the most goroutines running handlers at once (default 128 × GOMAXPROCS).
	Workers int
	// ConnectTooLarge answers a CONNECT over MaxPayload (a huge auth
	// payload) instead of closing the connection, which socket.io-client would
	// retry forever. Default message "payload too large", no data.
	ConnectTooLarge *ConnectError
	// KeepAuth keeps the CONNECT auth payload in Handshake after the
	// connection handlers ran (default: dropped then, to save memory).
	KeepAuth bool

	// DisableRecovery turns connection state recovery off (socket.io 4.6+'s
	// connectionStateRecovery, on by default here).
	DisableRecovery bool
	// Recovery bounds what recovery keeps.
	Recovery RecoveryOptions

	// Adapter makes each namespace's adapter (default NewMemoryAdapter).
	Adapter func(nsp *Namespace) Adapter
}

// RecoveryOptions bound connection state recovery. Past any bound a
// reconnecting client gets a fresh session (Socket.Recovered is false).
type RecoveryOptions struct {
	// MaxDisconnection is how long a session is kept after its connection
	// dropped (default 2 minutes, socket.io's default).
	MaxDisconnection time.Duration
	// MaxPackets and MaxBytes cap the broadcasts kept for replay (defaults
	// 10,000 packets, 32 MiB); the oldest go first.
	MaxPackets int
	MaxBytes   int
	// MaxSessions caps the disconnected sessions kept (default 100,000).
	MaxSessions int
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 45 * time.Second
	}
	if o.MaxAttachments <= 0 {
		o.MaxAttachments = 10
	}
	if o.MailboxSize <= 0 {
		o.MailboxSize = 256
	}
	if o.Workers <= 0 {
		o.Workers = 128 * runtime.GOMAXPROCS(0)
	}
	if o.ConnectTooLarge == nil {
		o.ConnectTooLarge = &ConnectError{Message: "payload too large"}
	}
	r := &o.Recovery
	if r.MaxDisconnection <= 0 {
		r.MaxDisconnection = 2 * time.Minute
	}
	if r.MaxPackets <= 0 {
		r.MaxPackets = 10_000
	}
	if r.MaxBytes <= 0 {
		r.MaxBytes = 32 << 20
	}
	if r.MaxSessions <= 0 {
		r.MaxSessions = 100_000
	}
	if o.Adapter == nil {
		o.Adapter = func(nsp *Namespace) Adapter { return NewMemoryAdapter(nsp) }
	}
	return o
}

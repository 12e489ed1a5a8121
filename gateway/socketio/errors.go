package socketio

import (
	"errors"

	"github.com/fitmate/commserver/gateway/socketio/engine"
)

// ConnectError refuses a connection: middleware returns one to answer
// CONNECT_ERROR with this message and data (socket.io-client's
// connect_error gets err.message and err.data). Any other error a
// middleware returns is answered with its Error() text and no data.
type ConnectError struct {
	Message string
	Data    any
}

func (e *ConnectError) Error() string { return e.Message }

// Errors returned by sockets and broadcasts.
var (
	// ErrDisconnected: the socket is not connected (not yet, or no longer).
	ErrDisconnected = errors.New("socket.io: socket not connected")
	// ErrAckTimeout: no acknowledgement came in time.
	ErrAckTimeout = errors.New("socket.io: acknowledgement timed out")
	// ErrReservedEvent: the event name is one socket.io reserves.
	ErrReservedEvent = errors.New("socket.io: reserved event name")
)

// Disconnect reasons a disconnect handler gets: Node's socket.io names.
const (
	ReasonServerNamespaceDisconnect = "server namespace disconnect" // Socket.Disconnect
	ReasonClientNamespaceDisconnect = "client namespace disconnect" // the client's socket.disconnect()
	ReasonForcedServerClose         = "forced server close"         // CloseTransport, connect timeout, a protocol violation
	ReasonTransportClose            = engine.ReasonTransportClose
	ReasonTransportError            = engine.ReasonTransportError
	ReasonPingTimeout               = engine.ReasonPingTimeout
	ReasonParseError                = engine.ReasonParseError
	ReasonForcedClose               = engine.ReasonForcedClose
	ReasonServerShutdown            = engine.ReasonServerShutdown
)

// recoverable reports whether a disconnect with this reason keeps the
// session for connection state recovery (Node's RECOVERABLE_DISCONNECT_REASONS).
func recoverable(reason string) bool {
	switch reason {
	case ReasonTransportError, ReasonTransportClose, ReasonForcedClose, ReasonPingTimeout,
		ReasonServerShutdown, ReasonForcedServerClose:
		return true
	}
	return false
}

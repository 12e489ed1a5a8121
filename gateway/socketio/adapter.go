package socketio

import (
	"context"
	"time"

	"github.com/fitmate/commserver/gateway/socketio/engine"
)

// BroadcastFlags modify a broadcast.
type BroadcastFlags struct {
	// Local keeps the broadcast on this node (a cluster adapter does not forward it).
	Local bool
	// Volatile drops the packet for a client whose transport cannot take it
	// now (a polling client between two polls); it is never replayed.
	Volatile bool
	// Timeout for the acknowledgements of BroadcastWithAck.
	Timeout time.Duration
}

// BroadcastOptions select the sockets of a namespace: those in any of
// Rooms (every socket when empty), minus those in any of Except. A socket
// id is a room holding that socket.
type BroadcastOptions struct {
	Rooms  []string
	Except []string
	Flags  BroadcastFlags
}

// SessionToPersist is what connection state recovery keeps of a socket
// that lost its connection.
type SessionToPersist struct {
	SID   string   // the socket id, restored as is
	PID   string   // the private session id the client presents
	Rooms []string // its rooms (without its own id)
	Data  any      // Socket.Data
}

// Session is a restored session: what was persisted and the broadcasts the
// socket missed, encoded and in order.
type Session struct {
	SessionToPersist
	Missed []*engine.Message
}

// Adapter is a namespace's rooms and broadcasts: the seam a cluster adapter
// (Redis) plugs into, as socket.io-adapter's Adapter class is in Node. Every
// broadcast goes through it. Membership methods are about the local socket
// given; the operations with BroadcastOptions reach every node unless
// Flags.Local. Methods are called from many goroutines at once and must not
// block long (a cluster adapter publishes asynchronously or with a short
// timeout). Errors are the adapter's (a cluster's transport), never about
// empty selections.
//
// A cluster adapter typically embeds *MemoryAdapter for the local part and
// calls BroadcastLocal with the offset it assigned (a stream id, say), so that
// the local delivery stays encode-once.
type Adapter interface {
	// AddAll adds a local socket to rooms.
	AddAll(s *Socket, rooms []string)
	// Del removes a local socket from a room.
	Del(s *Socket, room string)
	// DelAll removes a local socket from every room.
	DelAll(s *Socket)
	// SocketRooms lists the rooms of a local socket (without its own id).
	SocketRooms(s *Socket) []string

	// Broadcast sends an EVENT packet (p.Data: the event name then its
	// arguments) to the selected sockets. With recovery on, the adapter
	// assigns an offset to each packet without ack that is not volatile,
	// appends it to p.Data as the last argument, and keeps it for replay.
	Broadcast(p *Packet, opts BroadcastOptions) error
	// BroadcastWithAck sends p (given an ack id) and reports how many
	// sockets it reached (clientCount, called once per node), then each
	// answer (ack, called once per answer, on any goroutine).
	BroadcastWithAck(p *Packet, opts BroadcastOptions, clientCount func(int), ack func(args []any)) error

	// FetchSockets describes the selected sockets.
	FetchSockets(ctx context.Context, opts BroadcastOptions) ([]RemoteSocket, error)
	// AddSockets makes the selected sockets join rooms.
	AddSockets(opts BroadcastOptions, rooms []string) error
	// DelSockets makes the selected sockets leave rooms.
	DelSockets(opts BroadcastOptions, rooms []string) error
	// DisconnectSockets disconnects the selected sockets (close: their
	// whole connection, without DISCONNECT packets).
	DisconnectSockets(opts BroadcastOptions, close bool) error
	// ServerSideEmit sends an event to the other nodes' namespaces
	// (Namespace.OnServerSideEvent); a single node has none.
	ServerSideEmit(event string, args []any) error

	// Offset is the offset of the newest recoverable broadcast this node
	// assigned or delivered ("" when recovery is off). A direct emit to one
	// socket carries it as its last argument, as every event does in Node
	// with recovery on: the client then always holds an offset, and one that
	// never points past what it received.
	Offset() string

	// PersistSession keeps a disconnected socket's session for recovery.
	PersistSession(s SessionToPersist)
	// RestoreSession finds the session pid and the broadcasts after offset.
	// On success it has already joined s to the session's rooms, atomically
	// with taking the missed broadcasts where it can, so nothing falls between.
	// A session that is unknown, expired, or whose offset is no longer (or
	// never was) kept gives (nil, nil): the client gets a fresh session.
	RestoreSession(s *Socket, pid, offset string) (*Session, error)

	// Close releases the adapter (the server is closing).
	Close() error
}

// RemoteSocket describes a socket that may live on another node, as
// FetchSockets returns it; its methods act through the namespace (and the
// adapter) like Node's RemoteSocket.
type RemoteSocket struct {
	ID    string
	Rooms []string
	Data  any
	// Address and Auth come from the socket's handshake (Auth only with Options.KeepAuth).
	Address string
	Auth    map[string]any

	nsp   *Namespace
	local *Socket
}

// NewRemoteSocket describes a socket of another node (for cluster adapters).
func NewRemoteSocket(nsp *Namespace, id string, rooms []string, data any, address string) RemoteSocket {
	return RemoteSocket{ID: id, Rooms: rooms, Data: data, Address: address, nsp: nsp}
}

// Local is the socket when it lives on this node, else nil.
func (r RemoteSocket) Local() *Socket { return r.local }

// Emit sends an event to the socket.
func (r RemoteSocket) Emit(event string, args ...any) error {
	if r.local != nil {
		return r.local.Emit(event, args...)
	}
	return r.nsp.To(r.ID).Emit(event, args...)
}

// Join makes the socket join rooms.
func (r RemoteSocket) Join(rooms ...string) error {
	if r.local != nil {
		r.local.Join(rooms...)
		return nil
	}
	return r.nsp.In(r.ID).SocketsJoin(rooms...)
}

// Leave makes the socket leave rooms.
func (r RemoteSocket) Leave(rooms ...string) error {
	if r.local != nil {
		r.local.Leave(rooms...)
		return nil
	}
	return r.nsp.In(r.ID).SocketsLeave(rooms...)
}

// Disconnect disconnects the socket (close: its whole connection).
func (r RemoteSocket) Disconnect(close bool) error {
	if r.local != nil {
		r.local.Disconnect(close)
		return nil
	}
	return r.nsp.In(r.ID).DisconnectSockets(close)
}

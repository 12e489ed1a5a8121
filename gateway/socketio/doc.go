// Package socketio is a Socket.IO (protocol 5) server that the unmodified
// socket.io-client 4.x talks to, over Engine.IO (package engine). It passes
// the official socket.io-protocol and engine.io-protocol test suites and
// holds an idle connection in about 1.4 KB of live memory with no goroutine.
//
// Three layers, imports one way: engine (transports, heartbeats, the event
// loop, the wheel), this package (namespaces, sockets, handlers, packets,
// acknowledgements), and the Adapter (rooms and broadcasts, the seam a
// cluster adapter plugs into). The packet codec (DecodePacket, Reconstruct,
// AppendPacket) is pure, tested table by table and fuzzed.
//
// # Serving
//
//	io, err := socketio.NewServer(socketio.Options{Logger: log, CORS: &engine.CORS{...}})
//	io.Use(func(s *socketio.Socket) error { ... s.Handshake().Auth["token"] ... })
//	io.OnConnection(func(s *socketio.Socket) { s.Join("user:" + id) })
//	io.OnEvent("sendMessage", func(s *socketio.Socket, args []any, ack socketio.AckFunc) { ... })
//	io.OnDisconnect(func(s *socketio.Socket, reason string) { ... })
//	mux.Handle("/socket.io/", io)
//	defer io.Close(ctx)
//
// Handlers live in one table per namespace (Server.Of; only registered
// namespaces are served, others get "Invalid namespace"), never on sockets,
// so a disconnect handler can never be registered too late.
//
// # Order and the worker pool
//
// Handlers never run on the event loop. Each connection has a mailbox: its
// CONNECT (middleware, then the answer, then the connection handlers), its
// events and its disconnect run there one at a time, in arrival order, on a
// pool of at most Options.Workers goroutines started on demand. So an event
// sent right after the CONNECT is handled after the connection handlers, and
// the disconnect handlers run once, after them, even when the transport dies
// while they run. A mailbox holds MailboxSize packets; a client that sends
// faster than its handlers run is closed at the transport level. A handler's
// panic is recovered and logged with the socket id. Acknowledgements the
// client sends go straight to their waiter, so a handler may block on
// Socket.EmitWithAck.
//
// # Sockets
//
// Socket.Emit writes to one socket directly; Socket.EmitWithAck and EmitAck
// wait for its answer. Join and Leave change its rooms; Data and SetData hold
// the application's state (restored by recovery). Disconnect(false) sends a
// DISCONNECT after what is queued (socket.io-client does not reconnect
// after it); CloseTransport closes the connection without one, after what is
// queued, so the client reconnects by itself (what a deploy or an expired
// token needs). AfterFunc runs on the socket's queue after a delay, on the
// wheel, and stops with the socket.
//
// # Broadcasts and the Adapter
//
// Every broadcast (Server/Namespace/Socket To, In, Except, Emit; SocketsJoin,
// SocketsLeave, DisconnectSockets, FetchSockets) goes through the
// namespace's Adapter. The in-memory one (MemoryAdapter) encodes a broadcast
// once, frames it once and appends the same bytes to every selected
// connection, each once however many of its rooms are selected. Rooms cost
// two slice entries per membership and no map per socket.
//
// # Connection state recovery
//
// On by default (as socket.io 4.6+'s connectionStateRecovery, bounded): the
// CONNECT answer carries a private session id (pid); every event the client
// receives carries an offset as its last argument (broadcasts get the next
// one, direct emits the current one, as in Node); a connection that drops for
// a recoverable reason keeps its session (id, rooms, data) for
// Recovery.MaxDisconnection (2 minutes). A client that comes back with pid and
// offset in its CONNECT auth gets the same socket id, rooms and data, and the
// broadcasts it missed, after the middleware ran again (Socket.Recovered
// tells). Kept broadcasts are bounded in count and bytes; past any bound the
// client gets a fresh session. Direct emits are not replayed: emit to
// To(s.ID()) for that.
//
// # Limits
//
// Every limit is an option with a default: MaxPayload (1 MB, both
// transports), MaxAttachments (10), ConnectTimeout (45 s), one poll at a time,
// MaxBacklog (4 MiB per connection), MailboxSize (256), the recovery bounds.
// Bad input gets a protocol error or a closed connection; never a panic, never
// unbounded memory.
//
// # Logging and metrics
//
// Options.Logger (log/slog) gets refusals, cut-offs and panics, never auth
// payloads or arguments. Server.Stats returns counters for metrics; the
// package imports no metrics library.
package socketio

// Package engine is an Engine.IO (protocol 4) server: the transport under
// Socket.IO. It knows nothing of namespaces, rooms or events; it moves
// message packets between a Handler and clients over HTTP long-polling and
// WebSocket, and keeps each session alive with heartbeats.
//
// # Requests
//
// Server is an http.Handler. A GET without sid is a handshake: it opens a
// session and answers its open packet (sid, upgrades, pingInterval,
// pingTimeout, maxPayload). With a sid, GET is a long poll (answered at once
// with what is queued, or when something is; one at a time: a second one at
// once is an error that closes the session, as in Node) and POST delivers a
// payload (packets separated by 0x1e, binary as "b" + base64; a malformed
// payload closes the session with 400). Errors are Node's, to the byte:
// {"code":0,"message":"Transport unknown"} (and 1 Session ID unknown, 2 Bad
// handshake method, 3 Bad request, 4 Forbidden, 5 Unsupported protocol
// version) with 400, or 403 for Forbidden. CORS (Options.CORS) is answered
// as Node's cors middleware does, and Options.AllowRequest can refuse any
// request (an origin gate).
//
// # WebSocket on an event loop
//
// A WebSocket upgrade is checked and accepted by net/http, then the TCP
// connection is hijacked and handed to an event loop
// (github.com/lesismal/nbio, pinned at v1.6.8): no goroutine and no read
// buffer per connection; the loop's goroutines read into one shared 64 KiB
// buffer and call the frame reader. Frames are this package's own (RFC 6455:
// masking, fragmentation, control frames between fragments, the closing
// handshake, UTF-8 text) in a pure codec with its own tests and fuzz target.
// A message that arrives whole is unmasked in place and handed to the
// Handler without a copy. A message over MaxPayload is not kept: its first
// OversizePrefix bytes are, the rest is skipped as it streams (up to
// OversizeDiscard), and Handler.OnOversize decides: Socket.IO answers an
// oversize CONNECT with CONNECT_ERROR instead of a close the client would
// retry forever. A connection the loop cannot take (TLS) gets a reading
// goroutine instead.
//
// The upgrade of a polling session follows the protocol: "2probe" is
// answered "3probe" and a waiting poll is released with a noop ("6"); "5"
// moves the session (and what it had queued) to the WebSocket; polls after
// that are refused.
//
// # Writes
//
// Each session has one buffer of frames queued for it (both transports queue
// WebSocket frames; a poll turns them into its payload). A Message (a
// Socket.IO packet and its attachments) is framed once and its bytes appended
// to every session it goes to. A session with frames is queued once on a
// flush queue served by a few goroutines (Options.Flushers): what is queued
// while its flush is under way leaves in the next write, so a busy connection
// costs one syscall per round, not one per frame. The loop writes without
// blocking and keeps what the kernel does not take; those bytes count
// towards MaxBacklog with the queued ones: a client over it is cut off
// (ReasonTransportError). A server-side close sends what was queued first,
// then the close (a close frame, or the close packet on the last poll).
//
// # Timers
//
// Heartbeats, upgrade and close timeouts run on one Wheel (a hashed timing
// wheel, 10 ms ticks): a Timer is a few words inside its owner, armed and
// disarmed under one lock, fired by one goroutine. The server pings every
// PingInterval and closes a session whose pong is PingTimeout late: from
// when the ping was queued, checked one tick early so that the session is
// gone by the time the client's own deadline passes; or, when a poll carried
// the ping, from when the poll answered. The same wheel serves Socket.IO's connect timeout and
// the application's timers.
//
// # Handler
//
// The Handler gets OnOpen, OnMessage (data valid only during the call) and
// OnClose (exactly once, with Node's reason names) from the event loop, a
// polling request's goroutine or a timer. It must not block them: decode and
// hand the work on (package socketio queues it per connection).
package engine

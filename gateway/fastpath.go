package gateway

import (
	"encoding/binary"

	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// The write path of zishang520/socket.io for a WebSocket client costs, per
// frame and per socket: a packet struct and its options, three event
// emissions, a task on the socket's write queue (a goroutine), a gorilla
// PreparedMessage (a map, a mutex, a copy), and a write(2). Profiled under
// fan-out, that is ~30 µs of CPU per delivered frame, a third of it garbage
// collection. This file replaces the two places where that cost is paid,
// keeping the library for everything else (handshakes, upgrades, reading,
// heartbeats, rooms):
//
//   - wsTransport is the library's WebSocket transport with its Send
//     replaced: frames are encoded and appended to the connection's
//     coalescingConn at once, in the caller's goroutine. Writes are never
//     deferred to a queue, so every emit reaches the wire in the order it
//     was made, whichever path it took.
//   - fastAdapter is the library's in-memory adapter with its Broadcast
//     replaced: the packet is encoded and framed once, and the same bytes
//     are appended to each WebSocket client's connection. Clients still on
//     long-polling (or mid-upgrade) take the library's path.

// wsBuilder makes wsTransports for the engine; it is registered under the
// library's name for WebSocket, so upgrades and handshakes find it.
type wsBuilder struct{ transports.WebSocketBuilder }

func (b *wsBuilder) New(ctx *types.HttpContext) transports.Transport {
	inner := transports.NewWebSocket(ctx)
	if ctx.Websocket == nil || ctx.Websocket.Conn == nil {
		return inner
	}
	cc, ok := ctx.Websocket.NetConn().(*coalescingConn)
	if !ok {
		return inner
	}
	t := &wsTransport{Websocket: inner, conn: cc}
	inner.Prototype(t) // the library's internal virtual calls now go through t
	return t
}

// wsTransport writes Engine.IO packets straight to its coalescingConn.
type wsTransport struct {
	transports.Websocket
	conn *coalescingConn
}

// Send writes the packets now. The transport stays writable, so the engine
// never holds packets back in its own buffer.
func (t *wsTransport) Send(packets []*packet.Packet) {
	for _, p := range packets {
		var data types.BufferInterface
		if p.Options != nil && p.Options.WsPreEncodedFrame != nil {
			data = p.Options.WsPreEncodedFrame
		} else {
			var err error
			if data, err = t.Parser().EncodePacket(p, t.SupportsBinary()); err != nil {
				t.OnError("encode error", err)
				return
			}
		}
		opcode := byte(opBinary)
		if _, text := data.(*types.StringBuffer); text {
			opcode = opText
		}
		if err := t.conn.writeFrame(appendFrame(nil, opcode, data.Bytes())); err != nil {
			t.OnError("write error", err)
			return
		}
	}
	t.Emit("drain")
}

// direct appends a ready-made frame; false when the connection is gone.
func (t *wsTransport) direct(frame []byte) bool {
	return t.conn.writeFrame(frame) == nil
}

// WebSocket opcodes (RFC 6455 §5.2).
const (
	opText   = 0x1
	opBinary = 0x2
)

// appendFrame appends one final, unmasked (server-to-client) frame.
func appendFrame(dst []byte, opcode byte, payload []byte) []byte {
	n := len(payload)
	switch {
	case n <= 125:
		dst = append(dst, 0x80|opcode, byte(n))
	case n <= 0xffff:
		dst = append(dst, 0x80|opcode, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|opcode, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, payload...)
}

// fastAdapterBuilder makes fastAdapters for namespaces.
type fastAdapterBuilder struct{}

func (fastAdapterBuilder) New(nsp socket.Namespace) socket.Adapter {
	inner := socket.NewAdapter(nsp)
	a := &fastAdapter{Adapter: inner, nsp: nsp, encoder: parser.NewEncoder()}
	inner.Prototype(a)
	return a
}

// fastAdapter is the in-memory adapter with a broadcast that frames once.
type fastAdapter struct {
	socket.Adapter
	nsp     socket.Namespace
	encoder parser.Encoder
}

// Broadcast sends packet to every socket the options select, each once.
func (a *fastAdapter) Broadcast(p *parser.Packet, opts *socket.BroadcastOptions) {
	if p.Type != parser.EVENT || p.Id != nil || (opts != nil && opts.Flags != nil && (opts.Flags.Volatile || opts.Flags.Compress != nil)) {
		a.Adapter.Broadcast(p, opts)
		return
	}
	p.Nsp = a.nsp.Name()
	encoded := a.encoder.Encode(p)
	if len(encoded) != 1 { // binary attachments: the library's path
		a.Adapter.Broadcast(p, opts)
		return
	}
	text, ok := encoded[0].(*types.StringBuffer)
	if !ok {
		a.Adapter.Broadcast(p, opts)
		return
	}
	payload := make([]byte, 0, text.Len()+1)
	payload = append(append(payload, '4'), text.Bytes()...) // "4": an Engine.IO message
	frame := appendFrame(make([]byte, 0, len(payload)+10), opText, payload)
	pre := types.NewStringBuffer(payload)
	for _, s := range a.targets(opts) {
		if t, ok := s.Conn().Transport().(*wsTransport); ok && t.direct(frame) {
			continue
		}
		wo := &socket.WriteOptions{PreEncoded: true}
		wo.WsPreEncodedFrame = pre
		s.Client().WriteToEngine(encoded, wo)
	}
}

// targets lists the connected sockets in any of opts.Rooms (all when none)
// and in none of opts.Except, each once.
func (a *fastAdapter) targets(opts *socket.BroadcastOptions) []*socket.Socket {
	var rooms, except []socket.Room
	if opts != nil {
		if opts.Rooms != nil {
			rooms = opts.Rooms.Keys()
		}
		if opts.Except != nil {
			except = opts.Except.Keys()
		}
	}
	excluded := map[socket.SocketId]bool{}
	for _, r := range except {
		if ids, ok := a.Rooms().Load(r); ok {
			for _, id := range ids.Keys() {
				excluded[id] = true
			}
		}
	}
	sockets := a.nsp.Sockets()
	var out []*socket.Socket
	add := func(id socket.SocketId) {
		if excluded[id] {
			return
		}
		if s, ok := sockets.Load(id); ok && s.Connected() {
			out = append(out, s)
		}
	}
	if len(rooms) == 0 {
		a.Sids().Range(func(id socket.SocketId, _ *types.Set[socket.Room]) bool { add(id); return true })
		return out
	}
	multi := len(rooms) > 1
	for _, r := range rooms {
		ids, ok := a.Rooms().Load(r)
		if !ok {
			continue
		}
		for _, id := range ids.Keys() {
			add(id)
			if multi { // a socket in several of the rooms gets the packet once
				excluded[id] = true
			}
		}
	}
	return out
}

package gateway

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// The connect gate works around a race in zishang520/socket.io v3.0.6 that
// closes a client's connection when it sends an event the moment its CONNECT
// is answered (socket.io-client sends buffered emits right then; the React
// app's joinChat is one).
//
// The library's namespace answers CONNECT (Socket._onconnect writes the
// packet) and only then records the socket in the Client's namespace table
// (the callback of Namespace.Add, in Namespace._doConnect). An event decoded
// in between finds no socket for its namespace and Client.ondecoded closes
// the whole connection as "invalid state": no close frame, no log, the event
// lost. Node's socket.io does the same two steps in one tick, so no packet can
// come between them. Our WebSocket writes leave at once (fastpath.go), which
// makes the window real: seen about once in 100-300 connects on a loaded
// machine, and every time with a 5 ms pause after the CONNECT write.
//
// The fix sits at a seam the library offers, its parser: gateDecoder holds the
// packets of a namespace from its CONNECT until the connection handler says
// the socket is in place (release), then hands them over in order. The
// handshake middleware finds the gate in the CONNECT's auth map, where the
// decoder puts it; a refused handshake drops what was held (discard).

// gateKey is the auth-map key that carries a *connectGate from the decoder to
// the handshake middleware. Its value can never come from JSON.
const gateKey = "\x00connectGate"

// maxHeldPackets bounds what a client may send before its CONNECT is
// answered. A well-behaved client sends nothing then (its emits wait for the
// answer) except in the race above; more is a protocol violation, and the
// connection is closed.
const maxHeldPackets = 16

var errEarlyPackets = errors.New("socket.io: too many packets before the namespace connected")

// gateParser is the library's parser with a gated decoder, for the
// namespaces the server serves (a CONNECT to any other is refused by the
// library without a connection handler, so nothing would release it).
type gateParser struct {
	parser.Parser
	namespaces []string
}

func newGateParser(namespaces ...string) *gateParser {
	return &gateParser{Parser: parser.NewParser(), namespaces: namespaces}
}

func (p *gateParser) NewDecoder() parser.Decoder {
	d := &gateDecoder{EventEmitter: types.NewEventEmitter(), inner: p.Parser.NewDecoder(), namespaces: p.namespaces}
	_ = d.inner.On("decoded", d.ondecoded)
	return d
}

// gateDecoder emits what the library's decoder decodes, holding back a
// namespace's packets while its CONNECT is being handled. The library's
// Client listens on it for "decoded" as on its own decoder.
type gateDecoder struct {
	types.EventEmitter
	inner      parser.Decoder
	namespaces []string

	mu       sync.Mutex
	held     map[string][]*parser.Packet // namespace → packets held; a key is present while gated
	overflow atomic.Bool                 // a namespace got more than maxHeldPackets while held
}

func (d *gateDecoder) Add(data any) error {
	if err := d.inner.Add(data); err != nil {
		return err
	}
	if d.overflow.Load() {
		return errEarlyPackets // the Client closes the connection on an error
	}
	return nil
}

func (d *gateDecoder) Destroy() {
	d.inner.Destroy()
	d.mu.Lock()
	d.held = nil
	d.mu.Unlock()
}

// ondecoded runs in the connection's reading goroutine, one packet at a time.
func (d *gateDecoder) ondecoded(args ...any) {
	p, ok := args[0].(*parser.Packet)
	if !ok {
		d.Emit("decoded", args...)
		return
	}
	if p.Type == parser.CONNECT {
		d.connect(p)
		d.Emit("decoded", p) // outside the lock: the middleware runs inside
		return
	}
	d.mu.Lock()
	if q, gated := d.held[p.Nsp]; gated {
		if len(q) >= maxHeldPackets {
			d.overflow.Store(true)
		} else {
			d.held[p.Nsp] = append(q, p)
		}
		d.mu.Unlock()
		return
	}
	d.mu.Unlock()
	d.Emit("decoded", p)
}

// connect starts holding p's namespace and puts the gate in p's auth map.
func (d *gateDecoder) connect(p *parser.Packet) {
	if !slices.Contains(d.namespaces, p.Nsp) {
		return
	}
	auth, isMap := p.Data.(map[string]any)
	if p.Data != nil && !isMap {
		return // the library refuses it; nothing to release
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, pending := d.held[p.Nsp]; pending {
		return // a second CONNECT while the first is handled: the library's to judge
	}
	if d.held == nil {
		d.held = map[string][]*parser.Packet{}
	}
	d.held[p.Nsp] = nil
	if auth == nil {
		auth = map[string]any{}
		p.Data = auth
	}
	auth[gateKey] = &connectGate{d: d, nsp: p.Nsp}
}

// connectGate is one namespace's pending CONNECT on one connection.
type connectGate struct {
	d    *gateDecoder
	nsp  string
	once sync.Once
}

// takeGate removes the gate from a handshake's auth map and returns it (nil
// when there is none).
func takeGate(auth map[string]any) *connectGate {
	g, _ := auth[gateKey].(*connectGate)
	delete(auth, gateKey)
	return g
}

// release hands over the packets held since the CONNECT, in order, and stops
// holding. Call it once the socket is connected (the library's connection
// event), when its namespace table has the socket. The packets are emitted
// outside the lock (the library may close the connection from inside, which
// destroys this decoder); the namespace stays held until nothing is left, so
// a packet read meanwhile comes after them.
func (g *connectGate) release() {
	if g == nil {
		return
	}
	g.once.Do(func() {
		d := g.d
		for {
			d.mu.Lock()
			held, pending := d.held[g.nsp]
			if !pending {
				d.mu.Unlock()
				return
			}
			if len(held) == 0 {
				delete(d.held, g.nsp)
				d.mu.Unlock()
				return
			}
			d.held[g.nsp] = nil
			d.mu.Unlock()
			for _, p := range held {
				d.Emit("decoded", p)
			}
		}
	})
}

// discard drops what was held and stops holding: the handshake was refused,
// and what the client sent before its answer has no socket to go to.
func (g *connectGate) discard() {
	if g == nil {
		return
	}
	g.once.Do(func() {
		g.d.mu.Lock()
		delete(g.d.held, g.nsp)
		g.d.mu.Unlock()
	})
}

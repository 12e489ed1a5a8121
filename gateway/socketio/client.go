package socketio

import (
	"bytes"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/fitmate/commserver/gateway/socketio/engine"
)

// client is one Engine.IO connection seen from Socket.IO: the sockets it
// opened (one per namespace), the binary packet it is sending, and the
// queue its handlers run on.
type client struct {
	srv  *Server
	conn *engine.Session
	mb   mailbox

	mu            sync.Mutex
	sockets       []*Socket
	closed        bool
	everConnected bool
	partial       *partialPacket // a binary packet waiting for its attachments
	connectTimer  *engine.Timer
	cut           atomic.Bool // over MailboxSize: being closed, packets dropped
}

type partialPacket struct {
	p     Packet
	parts [][]byte
}

// engineHandler is the Server as the engine's Handler (kept off the
// Server's own methods).
type engineHandler struct{ srv *Server }

var _ engine.Handler = engineHandler{}

// OnOpen implements engine.Handler.
func (h engineHandler) OnOpen(es *engine.Session) {
	srv := h.srv
	c := &client{srv: srv, conn: es}
	es.SetContext(c)
	t := &engine.Timer{}
	t.Init(srv.eng.Wheel(), c.onConnectTimeout)
	c.mu.Lock()
	c.connectTimer = t
	c.mu.Unlock()
	t.Reset(srv.opts.ConnectTimeout)
}

// OnMessage implements engine.Handler.
func (h engineHandler) OnMessage(es *engine.Session, data []byte, binary bool) {
	c, _ := es.Context().(*client)
	if c != nil {
		c.onData(data, binary)
	}
}

// OnOversize implements engine.Handler: a CONNECT over MaxPayload (a
// huge auth payload) is answered with Options.ConnectTooLarge, so that the
// client stops instead of retrying; anything else closes the connection.
func (h engineHandler) OnOversize(es *engine.Session, prefix []byte, binary bool) bool {
	srv := h.srv
	c, _ := es.Context().(*client)
	if c == nil || binary || len(prefix) == 0 || prefix[0] != '0' {
		return false
	}
	c.mu.Lock()
	assembling := c.partial != nil
	c.mu.Unlock()
	if assembling {
		return false
	}
	nsp := "/"
	if len(prefix) > 1 && prefix[1] == '/' {
		end := bytes.IndexByte(prefix, ',')
		if end < 0 {
			return false // the namespace runs past what was kept
		}
		nsp = string(prefix[1:end])
	}
	srv.log.Info("socket.io: CONNECT over the payload limit refused", "sid", es.ID(), "nsp", nsp)
	c.sendConnectError(nsp, srv.opts.ConnectTooLarge)
	return true
}

// OnClose implements engine.Handler.
func (h engineHandler) OnClose(es *engine.Session, reason string) {
	c, _ := es.Context().(*client)
	if c == nil {
		return
	}
	c.mu.Lock()
	c.closed = true
	socks := c.sockets
	c.sockets = nil
	t := c.connectTimer
	c.connectTimer = nil
	c.partial = nil
	c.mu.Unlock()
	if t != nil {
		t.Stop()
	}
	for _, s := range socks {
		s.detach(reason)
	}
}

func (c *client) onConnectTimeout() {
	c.mu.Lock()
	skip := c.everConnected || c.closed
	c.mu.Unlock()
	if !skip {
		go c.closeTransport(ReasonForcedServerClose) // off the wheel
	}
}

// connected cancels the connect timeout once a namespace is joined.
func (c *client) connected() {
	c.mu.Lock()
	c.everConnected = true
	t := c.connectTimer
	c.connectTimer = nil
	c.mu.Unlock()
	if t != nil {
		t.Stop()
	}
}

func (c *client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// onData decodes a message (text packet or attachment) and dispatches what
// completes. Anything that breaks the protocol closes the connection.
func (c *client) onData(data []byte, binary bool) {
	if c.cut.Load() {
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	var p *Packet
	var err error
	if binary {
		if c.partial == nil {
			err = invalid("binary data outside a binary packet")
		} else {
			pp := c.partial
			pp.parts = append(pp.parts, bytes.Clone(data))
			if len(pp.parts) == pp.p.Attachments {
				c.partial = nil
				p = &pp.p
				p.Data, err = Reconstruct(p.Data, pp.parts)
			}
		}
	} else if c.partial != nil {
		err = invalid("text data inside a binary packet")
	} else {
		var d Packet
		d, err = DecodePacket(data, c.srv.opts.MaxAttachments)
		if err == nil {
			if (d.Type == PacketBinaryEvent || d.Type == PacketBinaryAck) && d.Attachments > 0 {
				c.partial = &partialPacket{p: d}
			} else {
				p = &d
			}
		}
	}
	ok := err == nil
	if ok && p != nil {
		ok = c.dispatchLocked(p)
	}
	c.mu.Unlock()
	if !ok {
		c.srv.log.Debug("socket.io: protocol violation, closing", "sid", c.conn.ID(), "err", err)
		c.srv.stats.violations.Add(1)
		c.closeTransport(ReasonForcedClose)
	}
}

// dispatchLocked routes a decoded packet; false closes the connection.
func (c *client) dispatchLocked(p *Packet) bool {
	var sock *Socket
	for _, s := range c.sockets {
		if s.nsp.name == p.Nsp {
			sock = s
			break
		}
	}
	switch {
	case sock == nil && p.Type == PacketConnect:
		nsp := c.srv.namespace(p.Nsp)
		if nsp == nil {
			c.sendConnectError(p.Nsp, &ConnectError{Message: "Invalid namespace"})
			return true
		}
		auth, _ := p.Data.(map[string]any)
		sock = newSocket(nsp, c, auth)
		c.sockets = append(c.sockets, sock)
		return c.srv.submit(c, sock, func() { nsp.connect(sock, auth) }, true)
	case sock == nil || p.Type == PacketConnect || p.Type == PacketConnectError:
		return false // Node: "invalid state"
	case p.Type == PacketAck || p.Type == PacketBinaryAck:
		// Acknowledgements go straight to their waiter (which may be a
		// handler blocked on this socket's queue).
		if p.HasID {
			sock.onAck(p.ID, p.Data.([]any))
		}
		return true
	case p.Type == PacketDisconnect:
		c.removeSocketLocked(sock)
		return c.srv.submit(c, sock, func() { sock.detach(ReasonClientNamespaceDisconnect) }, false)
	}
	return c.srv.submit(c, sock, func() { sock.onPacket(p) }, true)
}

func (c *client) removeSocket(s *Socket) {
	c.mu.Lock()
	c.removeSocketLocked(s)
	c.mu.Unlock()
}

func (c *client) removeSocketLocked(s *Socket) {
	for i, x := range c.sockets {
		if x == s {
			last := len(c.sockets) - 1
			c.sockets[i] = c.sockets[last]
			c.sockets[last] = nil
			c.sockets = c.sockets[:last]
			if len(c.sockets) == 0 {
				c.sockets = nil
			}
			return
		}
	}
}

func (c *client) socketsCopy() []*Socket {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Socket(nil), c.sockets...)
}

// disconnectAll sends every socket a DISCONNECT, then closes the connection
// (after what is queued).
func (c *client) disconnectAll() {
	for _, s := range c.socketsCopy() {
		if s.state.Load() == stateConnected {
			s.sendDisconnect()
		}
		s.detach(ReasonServerNamespaceDisconnect)
	}
	c.conn.Close()
}

// closeTransport disconnects every socket with reason and closes the
// connection without DISCONNECT packets, after what is queued.
func (c *client) closeTransport(reason string) {
	for _, s := range c.socketsCopy() {
		s.detach(reason)
	}
	c.conn.Close()
}

func (c *client) sendConnectError(nsp string, ce *ConnectError) {
	b := []byte{'4'}
	if nsp != "/" {
		b = append(b, nsp...)
		b = append(b, ',')
	}
	body := map[string]any{"message": ce.Message}
	if ce.Data != nil {
		body["data"] = ce.Data
	}
	out, err := appendJSON(b, body)
	if err != nil { // data that does not encode: the message alone
		out, _ = appendJSON(b, map[string]any{"message": ce.Message})
	}
	_ = c.conn.SendMessage(engine.NewTextMessage(out))
}

func formatNumber(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

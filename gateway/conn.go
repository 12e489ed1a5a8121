package gateway

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// This file holds the two things we do below the Socket.IO library for every
// WebSocket connection, at the one seam we own: the HTTP hijack.
//
//  1. Write coalescing. The library writes each frame to a socket with its own
//     write(2): at 10–17 µs of CPU per syscall on this kind of VM, fan-out is
//     bound by syscalls, not by work. coalescingConn copies each frame into a
//     per-connection buffer and a short-lived flusher goroutine writes whatever
//     has gathered in one syscall, so frames queued while a write is in
//     progress leave together.
//  2. Memory. net/http keeps a 4 KiB reader and two 4 KiB writers per
//     connection reachable from the ResponseWriter, which the library holds
//     for the whole life of the socket. trimmingWriter hands the library a
//     ResponseWriter that lets go of net/http's after the hijack.

// maxPendingBytes is how much unsent data a connection may gather. A client
// that reads slower than it is sent to is cut off rather than allowed to grow
// the server's memory without bound; it reconnects and catches up from history.
const maxPendingBytes = 4 << 20

var errSlowConsumer = errors.New("websocket client too slow: pending writes over the limit")

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// coalescingConn is a net.Conn whose writes are gathered and flushed in as
// few syscalls as possible. Write never blocks on the network: it returns
// once the bytes are queued (or the connection has failed). Reads pass through.
type coalescingConn struct {
	net.Conn
	mu       sync.Mutex
	pending  *[]byte // bytes queued for the flusher; nil when idle
	flushing bool
	err      error
	idle     *sync.Cond // signalled when the flusher goes idle
}

func newCoalescingConn(c net.Conn) *coalescingConn {
	cc := &coalescingConn{Conn: c}
	cc.idle = sync.NewCond(&cc.mu)
	return cc
}

func (c *coalescingConn) Write(p []byte) (int, error) {
	if err := c.writeFrame(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeFrame queues p (whole frames) for the flusher.
func (c *coalescingConn) writeFrame(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	if c.pending == nil {
		c.pending = bufPool.Get().(*[]byte)
	}
	if len(*c.pending)+len(p) > maxPendingBytes {
		c.err = errSlowConsumer
		_ = c.Conn.SetWriteDeadline(time.Now()) // unblock the flusher
		return c.err
	}
	*c.pending = append(*c.pending, p...)
	if !c.flushing {
		c.flushing = true
		go c.flush()
	}
	return nil
}

// flush writes what has gathered until nothing is left, then exits.
func (c *coalescingConn) flush() {
	c.mu.Lock()
	for c.pending != nil && len(*c.pending) > 0 && c.err == nil {
		buf := c.pending
		c.pending = nil
		c.mu.Unlock()
		_, err := c.Conn.Write(*buf)
		*buf = (*buf)[:0]
		if cap(*buf) <= 64<<10 {
			bufPool.Put(buf)
		}
		c.mu.Lock()
		if err != nil && c.err == nil {
			c.err = err
		}
	}
	if c.pending != nil && len(*c.pending) == 0 {
		bufPool.Put(c.pending)
		c.pending = nil
	}
	c.flushing = false
	c.idle.Broadcast()
	c.mu.Unlock()
}

// Close writes what is still queued (for at most a second) and closes.
func (c *coalescingConn) Close() error {
	c.mu.Lock()
	if c.flushing {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		for c.flushing {
			c.idle.Wait()
		}
	}
	if c.err == nil {
		c.err = net.ErrClosed
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// trimmingWriter wraps the ResponseWriter of a WebSocket upgrade. Its Hijack
// returns a coalescingConn and drops the reference to net/http's writer, so
// the buffers behind it are freed while the socket lives on.
type trimmingWriter struct {
	mu sync.Mutex
	w  http.ResponseWriter // nil after the hijack
	h  http.Header
}

func (t *trimmingWriter) Header() http.Header {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.w == nil {
		return t.h
	}
	return t.w.Header()
}

func (t *trimmingWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	w := t.w
	t.mu.Unlock()
	if w == nil {
		return 0, http.ErrHijacked
	}
	return w.Write(p)
}

func (t *trimmingWriter) WriteHeader(code int) {
	t.mu.Lock()
	w := t.w
	t.mu.Unlock()
	if w != nil {
		w.WriteHeader(code)
	}
}

func (t *trimmingWriter) Flush() {
	t.mu.Lock()
	w := t.w
	t.mu.Unlock()
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

func (t *trimmingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.w == nil {
		return nil, nil, http.ErrHijacked
	}
	conn, brw, err := http.NewResponseController(t.w).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if brw.Reader.Buffered() > 0 {
		// The client sent data before the handshake finished: keep net/http's
		// reader, which holds it (the upgrade fails on it, as it should).
		return conn, brw, nil
	}
	cc := newCoalescingConn(conn)
	t.h = http.Header{}
	t.w = nil
	return cc, bufio.NewReadWriter(bufio.NewReaderSize(cc, 16), bufio.NewWriterSize(cc, 16)), nil
}

// trimUpgrades wraps WebSocket upgrade requests' writers with trimmingWriter.
func trimUpgrades(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			w = &trimmingWriter{w: w}
		}
		next.ServeHTTP(w, r)
	})
}

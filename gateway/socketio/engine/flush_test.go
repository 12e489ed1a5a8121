package engine

import (
	"context"
	"net"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"
)

// fakeConn records writes; the first one blocks until released. Reads
// block until Close.
type fakeConn struct {
	net.Conn
	mu      sync.Mutex
	writes  [][]byte
	release chan struct{}
	closed  chan struct{}
	once    sync.Once
}

func newFakeConn() *fakeConn {
	return &fakeConn{release: make(chan struct{}), closed: make(chan struct{})}
}

func (c *fakeConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	first := len(c.writes) == 0
	c.writes = append(c.writes, append([]byte(nil), b...))
	c.mu.Unlock()
	if first {
		<-c.release
	}
	return len(b), nil
}

func (c *fakeConn) Read([]byte) (int, error)         { <-c.closed; return 0, net.ErrClosed }
func (c *fakeConn) Close() error                     { c.once.Do(func() { close(c.closed) }); return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }
func (c *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fakeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *fakeConn) writesNow() [][]byte              { c.mu.Lock(); defer c.mu.Unlock(); return c.writes }

// Frames queued while a flush is under way leave together, in one write.
func TestWriteCoalescing(t *testing.T) {
	_, ss, fc := wsSessionOnFake(t, false)
	deadline := time.Now().Add(5 * time.Second)
	const n = 100
	for range n {
		if err := ss.Send([]byte("frame"), false); err != nil {
			t.Fatal(err)
		}
	}
	close(fc.release)
	for len(fc.writesNow()) < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	w := fc.writesNow()
	if len(w) != 2 {
		t.Fatalf("%d writes, want 2 (the open packet, then the %d frames together)", len(w), n)
	}
	var got rec
	fr := newFrameReader(1<<20, 1<<20, 8)
	if err := fr.feed(maskFrames(w[1]), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.events) != n {
		t.Fatalf("second write holds %d frames, want %d", len(got.events), n)
	}
	ss.Close()
}

// Batch holds the flushers: frames queued inside it leave together, in one
// write, however often the sender yields to them meanwhile.
func TestBatchHoldsWrites(t *testing.T) {
	srv, ss, fc := wsSessionOnFake(t, true)
	deadline := time.Now().Add(5 * time.Second)
	const n = 50
	srv.Batch(func() {
		for range n {
			if err := ss.Send([]byte("frame"), false); err != nil {
				t.Error(err)
			}
			runtime.Gosched() // the flushers may run: they must wait
		}
	})
	for len(fc.writesNow()) < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	w := fc.writesNow()
	var got rec
	fr := newFrameReader(1<<20, 1<<20, 8)
	if err := fr.feed(maskFrames(w[1]), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.events) != n {
		t.Fatalf("the first write after the batch holds %d frames, want all %d", len(got.events), n)
	}
	ss.Close()
}

// wsSessionOnFake returns a server with two flushers and a WebSocket
// session on a fakeConn, once the open packet has been written (that first
// write blocks until fc.release is closed, unless nonBlocking). The server
// closes when the test ends.
func wsSessionOnFake(t *testing.T, nonBlocking bool) (*Server, *Session, *fakeConn) {
	t.Helper()
	srv, err := NewServer(Options{Handler: newTH(), Flushers: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	ss := srv.newSession(httptest.NewRequest("GET", "/engine.io/?EIO=4&transport=websocket", nil), TransportWebSocket)
	fc := newFakeConn()
	if nonBlocking {
		close(fc.release)
	}
	ws := srv.newWSConn(ss)
	if !ws.attach(fc, nil, func() bool {
		ss.mu.Lock()
		defer ss.mu.Unlock()
		ss.ws = ws
		ss.scheduleLocked() // the open packet: the first write
		return true
	}) {
		t.Fatal("not attached")
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(fc.writesNow()) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	return srv, ss, fc
}

package gateway

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// wsPair upgrades one connection through trimUpgrades with gorilla's
// upgrader and returns the server side's coalescingConn and a gorilla client.
func wsPair(t *testing.T) (*coalescingConn, *websocket.Conn) {
	t.Helper()
	got := make(chan *coalescingConn, 1)
	up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024}
	srv := httptest.NewServer(trimUpgrades(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		cc, ok := c.NetConn().(*coalescingConn)
		if !ok {
			t.Errorf("hijacked conn is %T, not *coalescingConn", c.NetConn())
		}
		got <- cc
	})))
	t.Cleanup(srv.Close)
	client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	select {
	case cc := <-got:
		return cc, client
	case <-time.After(5 * time.Second):
		t.Fatal("no upgrade")
	}
	return nil, nil
}

func TestFramesOfEverySizeArriveWhole(t *testing.T) {
	cc, client := wsPair(t)
	sizes := []int{0, 1, 125, 126, 127, 65535, 65536, 200_000}
	for _, n := range sizes {
		payload := bytes.Repeat([]byte{'x'}, n)
		if err := cc.writeFrame(appendFrame(nil, opText, payload)); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range sizes {
		mt, data, err := client.ReadMessage()
		if err != nil {
			t.Fatalf("reading the %d-byte frame: %v", n, err)
		}
		if mt != websocket.TextMessage || len(data) != n {
			t.Fatalf("got type %d, %d bytes; want text, %d bytes", mt, len(data), n)
		}
	}
}

func TestConcurrentWritersKeepFramesIntactAndInOrder(t *testing.T) {
	cc, client := wsPair(t)
	const writers, each = 8, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				msg := fmt.Sprintf("%d:%d:%s", w, i, strings.Repeat("p", i%300))
				if err := cc.writeFrame(appendFrame(nil, opText, []byte(msg))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	next := make([]int, writers)
	for range writers * each {
		_, data, err := client.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var w, i int
		if _, err := fmt.Sscanf(string(data), "%d:%d:", &w, &i); err != nil {
			t.Fatalf("garbled frame %q", data)
		}
		if i != next[w] {
			t.Fatalf("writer %d: got message %d, want %d", w, i, next[w])
		}
		if want := fmt.Sprintf("%d:%d:%s", w, i, strings.Repeat("p", i%300)); string(data) != want {
			t.Fatalf("frame %q, want %q", data, want)
		}
		next[w]++
	}
	wg.Wait()
}

func TestCloseFlushesWhatIsQueued(t *testing.T) {
	cc, client := wsPair(t)
	for i := range 100 {
		if err := cc.writeFrame(appendFrame(nil, opText, []byte(fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := cc.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		_, data, err := client.ReadMessage()
		if err != nil {
			t.Fatalf("frame %d lost at close: %v", i, err)
		}
		if string(data) != fmt.Sprint(i) {
			t.Fatalf("frame %d is %q", i, data)
		}
	}
	if err := cc.writeFrame([]byte("late")); err == nil {
		t.Fatal("write after close succeeded")
	}
}

func TestSlowConsumerIsCutOff(t *testing.T) {
	cc, client := wsPair(t)
	_ = client // never reads: the kernel buffers fill, then ours
	big := appendFrame(nil, opBinary, make([]byte, 1<<20))
	var err error
	for i := 0; i < 64 && err == nil; i++ {
		err = cc.writeFrame(big)
	}
	if err != errSlowConsumer {
		t.Fatalf("after 64 MiB unread: err = %v, want errSlowConsumer", err)
	}
}

func TestNonUpgradeRequestsAreNotWrapped(t *testing.T) {
	var got http.ResponseWriter
	h := trimUpgrades(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = w }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/socket.io/?EIO=4&transport=polling", nil))
	if _, wrapped := got.(*trimmingWriter); wrapped {
		t.Fatal("a polling request was wrapped")
	}
}

var _ net.Conn = (*coalescingConn)(nil)

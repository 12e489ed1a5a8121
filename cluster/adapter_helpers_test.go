package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fitmate/commserver/cluster"
	"github.com/fitmate/commserver/gateway/socketio"
	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"
)

// sioPod is one pod in this process: a socketio.Server with the cluster
// adapter, on its own HTTP test server.
type sioPod struct {
	name string
	srv  *socketio.Server
	url  string
	ads  *cluster.Adapters
}

// startPod runs a pod over rdb and prefix. Its sockets join the rooms in
// their CONNECT auth ("rooms") and get {"user": auth.user} as data.
func startPod(t testing.TB, name string, rdb *redis.Client, prefix string, setup func(*socketio.Server)) *sioPod {
	t.Helper()
	ads := cluster.NewAdapters(rdb, cluster.AdapterOptions{Prefix: prefix, Pod: name, RecoveryWindow: 2 * time.Minute,
		Timeout: 300 * time.Millisecond, RequestTimeout: 3 * time.Second, Heartbeat: 200 * time.Millisecond,
		Block: 200 * time.Millisecond, Log: quiet()})
	srv, err := socketio.NewServer(socketio.Options{Adapter: ads.For, PingInterval: time.Minute, PingTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	srv.OnConnection(func(s *socketio.Socket) {
		auth := s.Handshake().Auth
		if rooms, ok := auth["rooms"].([]any); ok && !s.Recovered() {
			for _, r := range rooms {
				s.Join(r.(string))
			}
		}
		if u, ok := auth["user"].(string); ok {
			s.SetData(map[string]any{"user": u})
		}
	})
	if setup != nil {
		setup(srv)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
		_ = ads.Close()
	})
	return &sioPod{name: name, srv: srv, url: hs.URL + "/socket.io/", ads: ads}
}

// waitPods waits until every pod's heartbeat sees all of them.
func waitPods(t testing.TB, pods ...*sioPod) {
	t.Helper()
	waitUntil(t, 5*time.Second, func() bool {
		for _, p := range pods {
			if len(p.ads.Pods()) != len(pods) {
				return false
			}
		}
		return true
	})
}

func waitUntil(t testing.TB, d time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sioClient speaks Socket.IO over a WebSocket, by hand.
type sioClient struct {
	t        testing.TB
	c        *websocket.Conn
	sid, pid string
	offset   string // the last broadcast offset received
}

type event struct {
	name  string
	args  []any // without the offset
	id    uint64
	hasID bool
}

// connectTo connects a client to the main namespace with auth.
func connectTo(t testing.TB, p *sioPod, auth map[string]any) *sioClient {
	t.Helper()
	u := "ws" + strings.TrimPrefix(p.url, "http") + "?EIO=4&transport=websocket"
	c, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &sioClient{t: t, c: c}
	if open := cl.frame(); !strings.HasPrefix(open, "0{") {
		t.Fatalf("open packet %q", open)
	}
	b, _ := json.Marshal(auth)
	cl.send("40" + string(b))
	ans := cl.frame()
	var h struct{ SID, PID string }
	if !strings.HasPrefix(ans, "40{") || json.Unmarshal([]byte(ans[2:]), &h) != nil {
		t.Fatalf("CONNECT answer %q", ans)
	}
	cl.sid, cl.pid = h.SID, h.PID
	return cl
}

func (c *sioClient) send(s string) {
	c.t.Helper()
	if err := c.c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// frame reads the next text frame that is not a ping (answering pings).
func (c *sioClient) frame() string {
	c.t.Helper()
	for {
		_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		mt, b, err := c.c.ReadMessage()
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		if mt == websocket.BinaryMessage {
			c.t.Fatalf("unexpected binary frame")
		}
		if string(b) == "2" {
			c.send("3")
			continue
		}
		return string(b)
	}
}

// next reads the next event (with its binary attachments); a DISCONNECT
// packet gives the event "(disconnect)".
func (c *sioClient) next() event {
	c.t.Helper()
	f := c.frame()
	if f == "41" {
		return event{name: "(disconnect)"}
	}
	if !strings.HasPrefix(f, "4") {
		c.t.Fatalf("frame %q", f)
	}
	p, err := socketio.DecodePacket([]byte(f[1:]), 10)
	if err != nil {
		c.t.Fatalf("packet %q: %v", f, err)
	}
	var bins [][]byte
	for range p.Attachments {
		_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		mt, b, err := c.c.ReadMessage()
		if err != nil || mt != websocket.BinaryMessage {
			c.t.Fatalf("attachment: %v (type %d)", err, mt)
		}
		bins = append(bins, b)
	}
	data, err := socketio.Reconstruct(p.Data, bins)
	if err != nil {
		c.t.Fatal(err)
	}
	args := data.([]any)
	ev := event{name: args[0].(string), args: args[1:], id: p.ID, hasID: p.HasID}
	if !p.HasID && len(ev.args) > 0 {
		if off, ok := ev.args[len(ev.args)-1].(string); ok && strings.Contains(off, "-") {
			c.offset = off
			ev.args = ev.args[:len(ev.args)-1]
		}
	}
	return ev
}

// until reads events up to (not including) the one named end and returns
// them as "name:arg0" strings.
func (c *sioClient) until(end string) []string {
	c.t.Helper()
	var got []string
	for {
		ev := c.next()
		if ev.name == end {
			return got
		}
		got = append(got, label(ev))
	}
}

// untilAll reads events until every one of ends came.
func (c *sioClient) untilAll(ends ...string) []string {
	c.t.Helper()
	want := make(map[string]bool)
	for _, e := range ends {
		want[e] = true
	}
	var got []string
	for len(want) > 0 {
		ev := c.next()
		if want[ev.name] {
			delete(want, ev.name)
			continue
		}
		got = append(got, label(ev))
	}
	return got
}

func label(ev event) string {
	if len(ev.args) == 0 {
		return ev.name
	}
	return ev.name + ":" + fmt.Sprint(ev.args[0])
}

// privateRedis runs a redis-server of this test's own on a free port, so
// the test can stop and restart it. stop and start are idempotent-ish.
type privateRedis struct {
	t    testing.TB
	port int
	cmd  *exec.Cmd
}

func newPrivateRedis(t testing.TB) *privateRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is needed: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r := &privateRedis{t: t, port: port}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *privateRedis) url() string { return "redis://127.0.0.1:" + strconv.Itoa(r.port) }

func (r *privateRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(r.port)})
	defer c.Close()
	waitUntil(r.t, 5*time.Second, func() bool { return c.Ping(context.Background()).Err() == nil })
}

func (r *privateRedis) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

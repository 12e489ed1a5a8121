package stickyproxy

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gorilla/websocket"
)

// fakePod answers like an Engine.IO server enough for routing: a handshake
// opens a session it alone knows, a request of a session it does not know
// gets Node's 400, a WebSocket echoes with its name. Other paths answer its
// name with what the proxy forwarded.
type fakePod struct {
	name     string
	eio3     bool
	gzip     bool
	srv      *httptest.Server
	mu       sync.Mutex
	sessions map[string]bool
	n        atomic.Int64
}

func startPod(t *testing.T, name string) *fakePod {
	t.Helper()
	p := &fakePod{name: name, sessions: map[string]bool{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (p *fakePod) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Pod", p.name)
	if !strings.HasPrefix(r.URL.Path, "/socket.io/") {
		fmt.Fprintf(w, "%s host=%s xff=%s", p.name, r.Host, r.Header.Get("X-Forwarded-For"))
		return
	}
	sid := r.URL.Query().Get("sid")
	p.mu.Lock()
	known := p.sessions[sid]
	if sid == "" {
		sid = fmt.Sprintf("%s-%d", p.name, p.n.Add(1))
		p.sessions[sid] = true
		known = true
	}
	p.mu.Unlock()
	if !known {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"code":1,"message":"Session ID unknown"}`)
		return
	}
	if websocket.IsWebSocketUpgrade(r) {
		c, err := upgrader.Upgrade(w, r, http.Header{"X-Pod": {p.name}})
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if c.WriteMessage(mt, append([]byte(p.name+":"), msg...)) != nil {
				return
			}
		}
	}
	if r.URL.Query().Get("sid") == "" {
		open := `0{"sid":"` + sid + `","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`
		if p.eio3 {
			open = fmt.Sprintf("%d:%s", len(open), open)
		}
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		if p.gzip {
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			io.WriteString(zw, open)
			zw.Close()
			return
		}
		io.WriteString(w, open)
		return
	}
	io.WriteString(w, "6")
}

func newProxy(t *testing.T, aff Affinity, pods ...*fakePod) (*Proxy, *httptest.Server) {
	t.Helper()
	var urls []string
	for _, p := range pods {
		urls = append(urls, p.srv.URL)
	}
	px, err := New(urls, Options{Affinity: aff}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(px)
	t.Cleanup(front.Close)
	return px, front
}

type answer struct {
	status int
	pod    string
	body   string
}

func get(t *testing.T, c *http.Client, url string) answer {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rd io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" && !resp.Uncompressed {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		rd = zr
	}
	b, _ := io.ReadAll(rd)
	return answer{resp.StatusCode, resp.Header.Get("X-Pod"), string(b)}
}

func sidOf(t *testing.T, body string) string {
	t.Helper()
	i := strings.Index(body, `"sid":"`)
	if i < 0 {
		t.Fatalf("no sid in %q", body)
	}
	rest := body[i+len(`"sid":"`):]
	return rest[:strings.IndexByte(rest, '"')]
}

// Without affinity a polling session breaks on the second pod, with Node's
// 400 "Session ID unknown".
func TestNoAffinityBreaksPolling(t *testing.T) {
	a, b := startPod(t, "a"), startPod(t, "b")
	px, front := newProxy(t, None, a, b)
	hs := get(t, http.DefaultClient, front.URL+"/socket.io/?EIO=4&transport=polling")
	sid := sidOf(t, hs.body)
	next := get(t, http.DefaultClient, front.URL+"/socket.io/?EIO=4&transport=polling&sid="+sid)
	if next.status != 400 || next.pod == hs.pod || !strings.Contains(next.body, "Session ID unknown") {
		t.Fatalf("handshake on %s, next request %+v: want 400 Session ID unknown from the other pod", hs.pod, next)
	}
	seen := map[string]int{}
	for range 10 {
		seen[get(t, http.DefaultClient, front.URL+"/healthz").pod]++
	}
	if seen["a"] != 5 || seen["b"] != 5 {
		t.Fatalf("round robin: %v", seen)
	}
	if px.Sessions() != 0 {
		t.Fatal("learned sessions without affinity")
	}
}

func TestSessionAffinity(t *testing.T) {
	for _, tc := range []struct {
		name       string
		eio3, gzip bool
	}{{"EIO4", false, false}, {"EIO3", true, false}, {"gzip", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			a, b, c := startPod(t, "a"), startPod(t, "b"), startPod(t, "c")
			for _, p := range []*fakePod{a, b, c} {
				p.eio3, p.gzip = tc.eio3, tc.gzip
			}
			px, front := newProxy(t, SessionID, a, b, c)
			client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
			for range 6 { // sessions opened on every pod in turn
				hs := get(t, client, front.URL+"/socket.io/?EIO=4&transport=polling")
				if hs.status != 200 {
					t.Fatalf("handshake %+v", hs)
				}
				sid := sidOf(t, hs.body)
				if !strings.HasPrefix(sid, hs.pod+"-") {
					t.Fatalf("handshake body %q from %s", hs.body, hs.pod)
				}
				for range 5 {
					if r := get(t, client, front.URL+"/socket.io/?EIO=4&transport=polling&sid="+sid); r.status != 200 || r.pod != hs.pod {
						t.Fatalf("session of %s: %+v", hs.pod, r)
					}
				}
			}
			if px.Sessions() != 6 {
				t.Fatalf("%d sessions learned, want 6", px.Sessions())
			}
			// A session no pod knows gets the 400 and is not kept.
			if r := get(t, client, front.URL+"/socket.io/?EIO=4&transport=polling&sid=nope"); r.status != 400 {
				t.Fatalf("unknown session: %+v", r)
			}
		})
	}
}

// The WebSocket upgrade of a polling session reaches the pod that holds it,
// and frames pass both ways.
func TestUpgradePassthrough(t *testing.T) {
	a, b := startPod(t, "a"), startPod(t, "b")
	_, front := newProxy(t, SessionID, a, b)
	wsURL := "ws" + strings.TrimPrefix(front.URL, "http")
	for range 4 {
		hs := get(t, http.DefaultClient, front.URL+"/socket.io/?EIO=4&transport=polling")
		sid := sidOf(t, hs.body)
		c, resp, err := websocket.DefaultDialer.Dial(wsURL+"/socket.io/?EIO=4&transport=websocket&sid="+sid, nil)
		if err != nil {
			t.Fatalf("dial: %v (%v)", err, resp)
		}
		if resp.Header.Get("X-Pod") != hs.pod {
			t.Fatalf("upgrade answered by %s, session on %s", resp.Header.Get("X-Pod"), hs.pod)
		}
		big := bytes.Repeat([]byte("x"), 200_000)
		for _, msg := range [][]byte{[]byte("2probe"), big} {
			if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
				t.Fatal(err)
			}
			_, got, err := c.ReadMessage()
			if err != nil || !bytes.Equal(got, append([]byte(hs.pod+":"), msg...)) {
				t.Fatalf("echo of %d bytes: %d bytes, %v", len(msg), len(got), err)
			}
		}
		c.Close()
	}
	// A WebSocket-only client (no sid) is placed and stays on its connection.
	c, resp, err := websocket.DefaultDialer.Dial(wsURL+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pod := resp.Header.Get("X-Pod")
	for range 3 {
		c.WriteMessage(websocket.TextMessage, []byte("4hi"))
		if _, got, err := c.ReadMessage(); err != nil || string(got) != pod+":4hi" {
			t.Fatalf("got %q, %v", got, err)
		}
	}
}

func TestCookieAffinity(t *testing.T) {
	a, b := startPod(t, "a"), startPod(t, "b")
	_, front := newProxy(t, Cookie, a, b)
	jar1, _ := cookiejar.New(nil)
	jar2, _ := cookiejar.New(nil)
	c1, c2 := &http.Client{Jar: jar1}, &http.Client{Jar: jar2}
	first1, first2 := get(t, c1, front.URL+"/healthz").pod, get(t, c2, front.URL+"/healthz").pod
	if first1 == first2 {
		t.Fatalf("two new clients on one pod %s", first1)
	}
	for range 5 {
		if p := get(t, c1, front.URL+"/socket.io/?EIO=4&transport=polling").pod; p != first1 {
			t.Fatalf("client 1 moved from %s to %s", first1, p)
		}
		if p := get(t, c2, front.URL+"/healthz").pod; p != first2 {
			t.Fatalf("client 2 moved from %s to %s", first2, p)
		}
	}
	// A client that keeps no cookies is not kept anywhere.
	seen := map[string]bool{}
	for range 4 {
		seen[get(t, http.DefaultClient, front.URL+"/healthz").pod] = true
	}
	if len(seen) != 2 {
		t.Fatalf("a client without cookies stayed on %v", seen)
	}
	// A cookie naming no pod gets a new one.
	req, _ := http.NewRequest("GET", front.URL+"/healthz", nil)
	req.AddCookie(&http.Cookie{Name: CookieName, Value: "9"})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Set-Cookie"), CookieName+"=") {
		t.Fatalf("no new cookie: %v", resp.Header)
	}
}

func TestClientIPAffinityAndForwarding(t *testing.T) {
	a, b := startPod(t, "a"), startPod(t, "b")
	_, front := newProxy(t, ClientIP, a, b)
	first := get(t, http.DefaultClient, front.URL+"/healthz")
	for range 5 {
		if r := get(t, http.DefaultClient, front.URL+"/healthz"); r.pod != first.pod {
			t.Fatalf("same address moved from %s to %s", first.pod, r.pod)
		}
	}
	host := strings.TrimPrefix(front.URL, "http://")
	if want := "host=" + host + " xff=127.0.0.1"; !strings.HasSuffix(first.body, want) {
		t.Fatalf("forwarded %q, want Host kept and X-Forwarded-For set (%q)", first.body, want)
	}
}

// A pod that is down: its sessions get 502 (the client reconnects), new
// sessions go to the pods that are up.
func TestPodDown(t *testing.T) {
	a, b := startPod(t, "a"), startPod(t, "b")
	_, front := newProxy(t, SessionID, a, b)
	b.srv.Close()
	codes := map[int]int{}
	for range 6 {
		r := get(t, http.DefaultClient, front.URL+"/socket.io/?EIO=4&transport=polling")
		codes[r.status]++
		if r.status == 200 && r.pod != "a" {
			t.Fatalf("answered by %s", r.pod)
		}
	}
	if codes[502] > 1 || codes[200] < 5 {
		t.Fatalf("answers %v: a pod that refused a connection should be skipped", codes)
	}
}

func TestParseAffinity(t *testing.T) {
	for s, want := range map[string]Affinity{"sid": SessionID, "COOKIE": Cookie, "ip": ClientIP, "none": None} {
		if got, err := ParseAffinity(s); err != nil || got != want {
			t.Errorf("ParseAffinity(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseAffinity("sticky"); err == nil {
		t.Error("ParseAffinity accepted sticky")
	}
}

package test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The example page (examples/react-app): the seed's SocketContext.tsx, byte
// for byte, in a small React page built with esbuild.
const (
	exampleDir     = "../examples/react-app"
	seedFile       = "../../shared/seed/fitmate-communication-server.md"
	defaultBrowser = "/usr/bin/chromium" // Debian's chromium; CHROMIUM overrides
	appPort        = 5173                // http://localhost:5173, the server's default CORS_ORIGIN
	appServerPort  = 3000                // the seed's SocketContext connects to http://localhost:3000
)

// port3000Lock is the file every test that needs port 3000 holds (flock) for as
// long as it uses the port: go test runs packages in parallel.
var port3000Lock = filepath.Join(os.TempDir(), "fitmate-port-3000.lock")

// The React app's SocketContext.tsx is the seed's, unchanged: the example must
// not drift from what the app runs.
func TestExampleSocketContextIsTheSeeds(t *testing.T) {
	seed, err := os.ReadFile(seedFile)
	if err != nil {
		t.Fatalf("the seed is not beside the repo: %v", err)
	}
	want := seedSocketContext(t, string(seed))
	got, err := os.ReadFile(filepath.Join(exampleDir, "src/context/SocketContext.tsx"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("examples/react-app/src/context/SocketContext.tsx differs from the seed's block (%d bytes vs %d): keep it byte for byte", len(got), len(want))
	}
}

// seedSocketContext returns the code block of the seed's "프론트엔드 WebSocket 클라이언트"
// section, each line ending in a newline.
func seedSocketContext(t *testing.T, seed string) string {
	t.Helper()
	_, section, ok := strings.Cut(seed, "\n## 프론트엔드 WebSocket 클라이언트\n")
	if !ok {
		t.Fatal("the seed has no frontend client section")
	}
	_, block, ok := strings.Cut(section, "\n```typescript\n")
	if !ok {
		t.Fatal("the seed's frontend section has no typescript block")
	}
	block, _, ok = strings.Cut(block, "\n```\n")
	if !ok || !strings.HasPrefix(block, "// context/SocketContext.tsx\n") {
		t.Fatal("the seed's frontend block is not SocketContext.tsx")
	}
	return block + "\n"
}

// A real browser: Debian's Chromium, driven by Playwright, opens the example
// page on http://localhost:5173, whose unchanged SocketContext connects to the
// server on :3000. What a user of the React app sees: connected (long-polling
// first, then upgraded to WebSocket), the unread badge, chat in a room with
// another client, and the page reconnecting by itself after the server restarts.
func TestBrowserReactApp(t *testing.T) {
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = defaultBrowser
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("no browser at %s: `apt-get install chromium` (.ci/run does), or set CHROMIUM: %v", chromium, err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is needed to build the page and drive the browser: %v", err)
	}
	for _, dep := range []string{"esbuild", "playwright-core", "react", "socket.io-client"} {
		if _, err := os.Stat(filepath.Join(exampleDir, "node_modules", dep)); err != nil {
			t.Fatalf("%s is not installed in examples/react-app: run `npm ci --prefix examples/react-app` (make test-deps does)", dep)
		}
	}
	lockPort3000(t)
	for _, port := range []int{appServerPort, appPort} {
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
			t.Fatalf("port %d is taken by a process that does not hold %s (a `make run`?): %v", port, port3000Lock, err)
		} else {
			l.Close()
		}
	}
	start := time.Now() // after the lock, which may wait for another package's test

	servePage(t, buildPage(t))
	srv := startServerOn(t, appServerPort)
	const room = "browser-room"
	srv.putRoom(t, room, alice, bob)
	srv.notifyUser(t, map[string]any{"userId": alice, "title": "before-connect", "type": "custom"})

	b := newBrowser(t)
	b.call(map[string]any{"op": "launch", "executablePath": chromium, "url": fmt.Sprintf("http://localhost:%d/", appPort), "token": token(alice)})
	b.waitText("connected", "true")
	b.waitText("connects", "1")
	b.waitText("unread-count", "1") // unreadNotificationCount on connect: the one made before

	// Long-polling first, then the upgrade to WebSocket, as socket.io-client does by default.
	b.waitText("transport", "websocket")
	b.waitText("transport-log", "polling upgrade:websocket")
	checkUpgradeOnTheWire(t, b.network())

	// A notification made while connected: newNotification in the list, the badge
	// recounted. Both at once: the seed's context adds 1 on newNotification, so a
	// count pushed before the notification would leave the badge at 3.
	srv.notifyUser(t, map[string]any{"userId": alice, "title": "while-connected", "type": "custom"})
	b.waitFor("the new notification listed with the badge at 2",
		`return document.querySelector('[data-testid="unread-count"]').textContent === '2' &&
			[...document.querySelectorAll('[data-testid="notification"]')].some(e => e.textContent.startsWith(arg + ':'))`,
		"while-connected")

	// Chat: the page joins through the context's joinChat (chatHistory answers),
	// sends through its sendMessage, and shows newMessage from the room.
	b.fill("room-input", room)
	b.click("join")
	b.waitText("joins", "1")
	bobs := newJS(t, srv)
	bobs.connect("bob", token(bob), transports["polling+upgrade"], map[string]any{"reconnection": true})
	wantOK(t, "bob joins", bobs.emitAck("bob", "joinChat", map[string]any{"chatRoomId": room}))

	b.fill("message-input", "hello from the browser")
	b.click("send")
	b.waitMessage("hello from the browser", alice)
	if got := bobs.waitEvent("bob", "newMessage").(map[string]any); got["message"] != "hello from the browser" {
		t.Fatalf("bob got %v", got)
	}
	send(t, bobs, "bob", room, "hello from bob")
	b.waitMessage("hello from bob", bob)

	// The server restarts (SIGTERM, then the same port): the page notices, and
	// reconnects by itself, without a reload; it joins the room again.
	b.eval(`window.notReloaded = true`, nil)
	if err := srv.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	b.waitText("connected", "false")
	srv.startOn(appServerPort)
	b.waitTextWithin("connected", "true", 20*time.Second) // socket.io-client's back-off: up to 5 s between tries
	b.waitText("connects", "2")
	b.waitText("joins", "2")
	b.waitText("unread-count", "2")
	b.waitText("transport-log", "polling upgrade:websocket polling upgrade:websocket")
	if v := b.eval(`return window.notReloaded === true`, nil); v != true {
		t.Fatal("the page was reloaded: it should have reconnected by itself")
	}
	if r := bobs.call(map[string]any{"op": "waitReconnect", "name": "bob", "timeoutMs": 20000}); r["ok"] != true {
		t.Fatalf("bob did not reconnect: %v", r["error"])
	}
	wantOK(t, "bob rejoins", bobs.emitAck("bob", "joinChat", map[string]any{"chatRoomId": room}))

	b.fill("message-input", "browser after the restart")
	b.click("send")
	b.waitMessage("browser after the restart", alice)
	send(t, bobs, "bob", room, "bob after the restart")
	b.waitMessage("bob after the restart", bob)
	if got := b.eval(`return document.querySelector('[data-testid="last-error"]').textContent`, nil); got != "" {
		t.Errorf("the page shows an error: %v", got)
	}
	t.Logf("browser test took %v", time.Since(start).Round(100*time.Millisecond))
}

// checkUpgradeOnTheWire reads the browser's own network log: the first
// Socket.IO request is a long-polling handshake (no sid), the session goes on
// over polling, and then a WebSocket is opened for that same session: an
// upgrade, not a WebSocket-only client.
func checkUpgradeOnTheWire(t *testing.T, list []map[string]any) {
	t.Helper()
	if len(list) == 0 {
		t.Fatal("the browser made no Socket.IO request")
	}
	first, _ := list[0]["url"].(string)
	if list[0]["kind"] != "request" || !strings.Contains(first, "transport=polling") || strings.Contains(first, "sid=") {
		t.Fatalf("the first Socket.IO request is not a long-polling handshake: %v", list[0])
	}
	sid := ""
	for _, e := range list[1:] {
		raw, _ := e["url"].(string)
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		switch {
		case e["kind"] == "request" && sid == "":
			sid = q.Get("sid")
			if q.Get("transport") != "polling" || sid == "" {
				t.Fatalf("after the handshake, not a polling request of the session: %s", raw)
			}
		case e["kind"] == "websocket":
			if q.Get("transport") != "websocket" || sid == "" || q.Get("sid") != sid {
				t.Fatalf("the WebSocket %s is not an upgrade of the polling session %q", raw, sid)
			}
			return
		}
	}
	t.Fatalf("the browser opened no WebSocket: %v", list)
}

// lockPort3000 holds port3000Lock until the test ends.
func lockPort3000(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(port3000Lock, os.O_RDONLY|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			t.Fatalf("flock %s: %v", port3000Lock, err)
		}
		t.Logf("port 3000 is in use by another test; waiting for %s", port3000Lock)
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			t.Fatalf("flock %s: %v", port3000Lock, err)
		}
	}
	t.Cleanup(func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
}

// buildPage builds the example with esbuild into a temporary directory.
func buildPage(t *testing.T) string {
	t.Helper()
	out := t.TempDir()
	cmd := exec.Command("node", filepath.Join(exampleDir, "build.mjs"), "--outdir", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the example page: %v\n%s", err, b)
	}
	return out
}

// servePage serves dir on 127.0.0.1:5173 until the test ends.
func servePage(t *testing.T, dir string) {
	t.Helper()
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", appPort))
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.FileServer(http.Dir(dir)), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
}

// browser is one node process running examples/react-app/e2e/driver.mjs.
type browser struct {
	t      *testing.T
	in     io.WriteCloser
	mu     sync.Mutex
	next   atomic.Int64
	wait   map[int64]chan map[string]any
	dead   chan struct{}
	stderr *syncBuffer
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	cmd := exec.Command("node", filepath.Join(exampleDir, "e2e/driver.mjs"))
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, in: in, wait: map[int64]chan map[string]any{}, dead: make(chan struct{}), stderr: &syncBuffer{}}
	cmd.Stderr = b.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(b.dead)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			id, _ := m["id"].(float64)
			b.mu.Lock()
			ch := b.wait[int64(id)]
			delete(b.wait, int64(id))
			b.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		}
	}()
	t.Cleanup(func() {
		in.Close() // the driver closes Chromium and exits
		select {
		case <-b.dead:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("browser driver stderr (page console):\n%s", tail(b.stderr.String(), 100))
		}
	})
	return b
}

// call sends one request to the driver and fails the test unless it succeeds.
func (b *browser) call(req map[string]any) map[string]any {
	b.t.Helper()
	id := b.next.Add(1)
	req["id"] = id
	ch := make(chan map[string]any, 1)
	b.mu.Lock()
	b.wait[id] = ch
	b.mu.Unlock()
	line, _ := json.Marshal(req)
	if _, err := b.in.Write(append(line, '\n')); err != nil {
		b.t.Fatalf("browser driver: %v", err)
	}
	select {
	case m := <-ch:
		if m["ok"] != true {
			b.t.Fatalf("browser %s: %v", req["op"], m["error"])
		}
		return m
	case <-b.dead:
		b.t.Fatalf("browser driver exited: %s", b.stderr.String())
	case <-time.After(60 * time.Second):
		b.t.Fatalf("browser driver did not answer %v", req)
	}
	return nil
}

// waitText waits (polling in the page) until the element reads exactly want.
func (b *browser) waitText(testid, want string) {
	b.t.Helper()
	b.waitTextWithin(testid, want, 10*time.Second)
}

func (b *browser) waitTextWithin(testid, want string, d time.Duration) {
	b.t.Helper()
	b.call(map[string]any{"op": "waitText", "testid": testid, "text": want, "timeoutMs": d.Milliseconds()})
}

// waitFor waits until function(arg) { body } is truthy in the page.
func (b *browser) waitFor(what, body string, arg any) any {
	b.t.Helper()
	return b.call(map[string]any{"op": "waitFor", "what": what, "body": body, "arg": arg, "timeoutMs": 10000})["value"]
}

func (b *browser) eval(body string, arg any) any {
	b.t.Helper()
	return b.call(map[string]any{"op": "eval", "body": body, "arg": arg})["value"]
}

func (b *browser) fill(testid, value string) {
	b.t.Helper()
	b.call(map[string]any{"op": "fill", "testid": testid, "value": value})
}

func (b *browser) click(testid string) {
	b.t.Helper()
	b.call(map[string]any{"op": "click", "testid": testid})
}

// waitMessage waits until the page's chat shows text from sender, exactly once.
func (b *browser) waitMessage(text, sender string) {
	b.t.Helper()
	b.waitFor(fmt.Sprintf("message %q from %s shown", text, sender),
		`return [...document.querySelectorAll('[data-testid="message"]')].some(e => e.textContent === arg.text && e.dataset.sender === arg.sender)`,
		map[string]any{"text": text, "sender": sender})
	n := b.eval(`return [...document.querySelectorAll('[data-testid="message"]')].filter(e => e.textContent === arg).length`, text)
	if n != float64(1) {
		b.t.Fatalf("message %q is shown %v times, want once", text, n)
	}
}

// network returns the page's Socket.IO requests and WebSockets, in order.
func (b *browser) network() []map[string]any {
	b.t.Helper()
	list, _ := b.call(map[string]any{"op": "network"})["list"].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, e := range list {
		m, _ := e.(map[string]any)
		out = append(out, m)
	}
	return out
}

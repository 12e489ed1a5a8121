// Package test holds the end-to-end tests: they build the real server binary,
// start it on a free port with the embedded store, and drive it with the real
// socket.io-client from npm (the React app's client, through jsclient/driver.mjs),
// zishang520's Go client (another real client implementation), a real
// browser, and plain HTTP.
package test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Test credentials. JWT_SECRET is exactly the 32-byte minimum.
const (
	testSecret = "e2e-secret-0123456789abcdef01234"
	testAPIKey = "e2e-service-key-0123456789"
	appOrigin  = "http://localhost:5173"
)

var (
	binary string // the server binary built by TestMain
	binDir string // where TestMain builds binaries (see also buildOnce)
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "commserver-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	binary = filepath.Join(dir, "commserver")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "../cmd/commserver")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the server:", err)
		os.Exit(1)
	}
	if _, err := os.Stat("jsclient/node_modules/socket.io-client"); err != nil {
		fmt.Fprintln(os.Stderr, "socket.io-client is not installed: run `npm ci --prefix test/jsclient` (make test does)")
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running commserver process.
type server struct {
	t       testing.TB
	bin     string // the binary it runs
	URL     string // http://127.0.0.1:port
	port    int
	DataDir string
	env     []string
	cmd     *exec.Cmd
	logs    *syncBuffer
	exited  chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServer starts the binary with the test credentials, a fresh data
// directory (unless DATA_DIR is given) and extra environment, and waits for /healthz.
func startServer(t testing.TB, extra ...string) *server {
	t.Helper()
	return startServerOn(t, 0, extra...)
}

// startServerOn is startServer on a given port (0: a free one).
func startServerOn(t testing.TB, port int, extra ...string) *server {
	t.Helper()
	return startServerBinaryOn(t, binary, port, extra...)
}

// startServerBinary is startServer running another build of the server (see buildOnce).
func startServerBinary(t testing.TB, bin string, extra ...string) *server {
	t.Helper()
	return startServerBinaryOn(t, bin, 0, extra...)
}

// startServerBinaryOn is startServerBinary on a given port (0: a free one).
func startServerBinaryOn(t testing.TB, bin string, port int, extra ...string) *server {
	t.Helper()
	env := []string{
		"HOST=127.0.0.1",
		"JWT_SECRET=" + testSecret,
		"SERVICE_API_KEY=" + testAPIKey,
		"CORS_ORIGIN=" + appOrigin,
		"LOG_LEVEL=debug",
		"SHUTDOWN_TIMEOUT=10s",
		// userOffline at once, as before presence had a grace: the grace
		// itself is TestPresenceGraceAcrossAReload's and package presence's.
		"PRESENCE_GRACE=0s",
		"PATH=" + os.Getenv("PATH"),
	}
	dataDir := ""
	for _, e := range extra {
		if v, ok := strings.CutPrefix(e, "DATA_DIR="); ok {
			dataDir = v
		}
	}
	if dataDir == "" {
		dataDir = t.TempDir()
		env = append(env, "DATA_DIR="+dataDir)
	}
	env = append(env, extra...)
	s := &server{t: t, bin: bin, DataDir: dataDir, env: env}
	if port == 0 {
		port = freePort(t)
	}
	s.startOn(port)
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("server log:\n%s", tail(s.logs.String(), 200))
		}
	})
	return s
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

func (s *server) start() { s.startOn(freePort(s.t)) }

func (s *server) startOn(port int) {
	s.t.Helper()
	s.port = port
	s.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
	s.cmd = exec.Command(s.bin)
	s.cmd.Env = append(append([]string{}, s.env...), fmt.Sprintf("PORT=%d", port))
	if s.logs == nil {
		s.logs = &syncBuffer{}
	}
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.exited = make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(s.cmd, s.exited)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.exited:
			s.t.Fatalf("server exited at start: %v\n%s", err, s.logs.String())
		default:
		}
		resp, err := http.Get(s.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("server not healthy in 30s\n%s", s.logs.String())
}

// Stop sends SIGTERM and waits; a graceful shutdown exits 0.
func (s *server) Stop() error {
	if s.cmd == nil || s.cmd.ProcessState != nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		s.cmd = nil
		return err
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		s.cmd = nil
		return fmt.Errorf("server did not stop within 20s of SIGTERM")
	}
}

// Kill ends the server with SIGKILL, as a crashed pod.
func (s *server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart stops the server gracefully and starts it again on a new port, same data.
func (s *server) Restart() {
	s.t.Helper()
	if err := s.Stop(); err != nil {
		s.t.Fatalf("stop: %v", err)
	}
	s.start()
}

// RestartSamePort stops the server gracefully and starts it again on the same
// port and data, as a pod restarting behind its address: clients that
// reconnect by themselves find it again.
func (s *server) RestartSamePort() {
	s.t.Helper()
	if err := s.Stop(); err != nil {
		s.t.Fatalf("stop: %v", err)
	}
	s.startOn(s.port)
}

// Logs returns what the server printed.
func (s *server) Logs() string { return s.logs.String() }

// token signs an HS256 token for user with the test secret, valid for an hour.
func token(user string, extra ...any) string {
	claims := jwt.MapClaims{"sub": user, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for i := 0; i+1 < len(extra); i += 2 {
		claims[extra[i].(string)] = extra[i+1]
	}
	t, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testSecret))
	if err != nil {
		panic(err)
	}
	return t
}

// Users, shaped like the main backend's ObjectIds.
const (
	alice = "aaaaaaaaaaaaaaaaaaaaaaa1"
	bob   = "bbbbbbbbbbbbbbbbbbbbbbb2"
	carol = "ccccccccccccccccccccccc3"
	admin = "ddddddddddddddddddddddd4"
)

// reply is an HTTP answer as a test reads it.
type reply struct {
	status int
	header http.Header
	raw    []byte
}

// do calls a route; body is sent as is when it is a string or []byte, as JSON otherwise.
func (s *server) do(t testing.TB, method, path string, headers map[string]string, body any) reply {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, raw: raw}
}

// api calls a route and decodes the JSON object it answers.
func (s *server) api(t testing.TB, method, path string, headers map[string]string, body any) (int, map[string]any) {
	t.Helper()
	r := s.do(t, method, path, headers, body)
	var out map[string]any
	if len(r.raw) > 0 && json.Unmarshal(r.raw, &out) != nil {
		t.Fatalf("%s %s: %d, not JSON: %s", method, path, r.status, r.raw)
	}
	return r.status, out
}

func serviceKey() map[string]string { return map[string]string{"X-API-Key": testAPIKey} }
func bearerOf(user string, extra ...any) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token(user, extra...)}
}

// putRoom registers a room's members through the service route.
func (s *server) putRoom(t testing.TB, room string, members ...string) {
	t.Helper()
	code, body := s.api(t, "PUT", "/chat/rooms/"+room, serviceKey(), map[string]any{"members": members})
	if code != 200 {
		t.Fatalf("PUT /chat/rooms/%s: %d %v", room, code, body)
	}
}

// js is one node process running driver.mjs: many named sockets.
type js struct {
	t     testing.TB
	cmd   *exec.Cmd
	in    io.WriteCloser
	mu    sync.Mutex
	next  atomic.Int64
	wait  map[int64]chan map[string]any
	dead  chan struct{}
	url   string
	stder *syncBuffer
}

// newJS starts a driver talking to srv.
func newJS(t testing.TB, srv *server) *js {
	t.Helper()
	cmd := exec.Command("node", "jsclient/driver.mjs")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	j := &js{t: t, cmd: cmd, in: in, wait: map[int64]chan map[string]any{}, dead: make(chan struct{}), url: srv.URL, stder: &syncBuffer{}}
	cmd.Stderr = j.stder
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(j.dead)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			id := int64(m["id"].(float64))
			j.mu.Lock()
			ch := j.wait[id]
			delete(j.wait, id)
			j.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		}
	}()
	t.Cleanup(func() {
		in.Close()
		select {
		case <-j.dead:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
		}
		_ = cmd.Wait()
		if t.Failed() && j.stder.String() != "" {
			t.Logf("driver stderr:\n%s", j.stder.String())
		}
	})
	return j
}

// call sends one request and waits for its reply.
func (j *js) call(req map[string]any) map[string]any {
	j.t.Helper()
	id := j.next.Add(1)
	req["id"] = id
	ch := make(chan map[string]any, 1)
	j.mu.Lock()
	j.wait[id] = ch
	j.mu.Unlock()
	line, _ := json.Marshal(req)
	if _, err := j.in.Write(append(line, '\n')); err != nil {
		j.t.Fatalf("driver: %v", err)
	}
	select {
	case m := <-ch:
		return m
	case <-j.dead:
		j.t.Fatalf("driver exited: %s", j.stder.String())
	case <-time.After(30 * time.Second):
		j.t.Fatalf("driver did not answer %v", req)
	}
	return nil
}

// connect opens a socket named name with auth { token }; it fails the test on connect_error.
func (j *js) connect(name, tok string, opts ...map[string]any) map[string]any {
	j.t.Helper()
	r := j.tryConnect(name, map[string]any{"token": tok}, opts...)
	if r["ok"] != true {
		j.t.Fatalf("connect %s: %v", name, r["error"])
	}
	return r
}

// tryConnect opens a socket with any auth object and returns the driver's reply.
func (j *js) tryConnect(name string, auth map[string]any, opts ...map[string]any) map[string]any {
	j.t.Helper()
	req := map[string]any{"op": "connect", "name": name, "url": j.url, "auth": auth}
	for _, o := range opts {
		for k, v := range o {
			req[k] = v
		}
	}
	return j.call(req)
}

// emitAck emits with an acknowledgement and returns the server's answer.
func (j *js) emitAck(name, event string, args ...any) map[string]any {
	j.t.Helper()
	r := j.call(map[string]any{"op": "emit", "name": name, "event": event, "args": args, "ack": true})
	if r["ok"] != true {
		j.t.Fatalf("emit %s %s: %v", name, event, r["error"])
	}
	a, _ := r["ack"].(map[string]any)
	return a
}

// emit emits without an acknowledgement, as the React app does.
func (j *js) emit(name, event string, args ...any) {
	j.t.Helper()
	if r := j.call(map[string]any{"op": "emit", "name": name, "event": event, "args": args}); r["ok"] != true {
		j.t.Fatalf("emit %s %s: %v", name, event, r["error"])
	}
}

// waitEvent returns the first argument of the next event of that name; it fails after timeout.
func (j *js) waitEvent(name, event string, timeout ...time.Duration) any {
	j.t.Helper()
	args, err := j.tryWait(name, event, timeout...)
	if err != nil {
		j.t.Fatalf("%s: %v", name, err)
	}
	if len(args) == 0 {
		return nil
	}
	return args[0]
}

// tryWait is waitEvent that returns an error instead of failing.
func (j *js) tryWait(name, event string, timeout ...time.Duration) ([]any, error) {
	ms := 5000
	if len(timeout) > 0 {
		ms = int(timeout[0] / time.Millisecond)
	}
	r := j.call(map[string]any{"op": "wait", "name": name, "event": event, "timeoutMs": ms})
	if r["ok"] != true {
		return nil, fmt.Errorf("%v", r["error"])
	}
	args, _ := r["args"].([]any)
	return args, nil
}

// drain returns the first arguments of every unread event of that name.
func (j *js) drain(name, event string) []any {
	j.t.Helper()
	r := j.call(map[string]any{"op": "drain", "name": name, "event": event})
	list, _ := r["list"].([]any)
	out := make([]any, len(list))
	for i, l := range list {
		if args, _ := l.([]any); len(args) > 0 {
			out[i] = args[0]
		}
	}
	return out
}

// noEvent asserts that no event of that name arrives within d.
func (j *js) noEvent(name, event string, d time.Duration) {
	j.t.Helper()
	if args, err := j.tryWait(name, event, d); err == nil {
		j.t.Fatalf("%s got unexpected %s %v", name, event, args)
	}
}

func (j *js) state(name string) map[string]any {
	return j.call(map[string]any{"op": "state", "name": name})
}
func (j *js) close(name string) { j.call(map[string]any{"op": "close", "name": name}) }

// eventually retries f until it returns nil or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal(err)
}

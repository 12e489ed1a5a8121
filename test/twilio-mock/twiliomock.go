// Package twiliomock runs local Twilios for tests.
//
// StartPrism serves Twilio's official OpenAPI spec (../shared/twilio/twilio_api_v2010.json)
// with Stoplight Prism (installed here by `make test-deps`): it validates
// every request as the real API would and answers with the spec's examples.
// StartFake is a small server of the test's own that answers the Messages
// API as Twilio documents, for the paths Prism cannot play (429, 5xx, 21211,
// timeouts), and records what it received.
package twiliomock

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Test credentials: the account SID matches the spec's pattern (AC + 32 hex).
const (
	AccountSID = "AC0123456789abcdef0123456789abcdef"
	AuthToken  = "0123456789abcdef0123456789abcdef"
	From       = "+15005550006"
)

// dir is this package's directory, where package.json and node_modules are.
func dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// SpecPath is Twilio's OpenAPI spec, at ../shared beside the repository.
func SpecPath() string {
	return filepath.Clean(filepath.Join(dir(), "..", "..", "..", "shared", "twilio", "twilio_api_v2010.json"))
}

// StartPrism starts Prism on a free loopback port serving the spec and
// returns its base URL; it stops with the test. It skips the test when the
// spec is absent, and fails it when Prism is not installed.
func StartPrism(t testing.TB) string {
	t.Helper()
	spec := SpecPath()
	if _, err := os.Stat(spec); err != nil {
		t.Skipf("Twilio's OpenAPI spec is not at %s (CI has it at ../shared): %v", spec, err)
	}
	bin := filepath.Join(dir(), "node_modules", ".bin", "prism")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("prism is not installed: run `make test-deps` (npm ci --prefix test/twilio-mock): %v", err)
	}
	port := freePort(t)
	cmd := exec.Command(bin, "mock", "-p", fmt.Sprint(port), "-h", "127.0.0.1", spec)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) // prism's process group, which we started
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("prism output:\n%s", out.String())
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatalf("prism exited at start:\n%s", out.String())
		default:
		}
		if resp, err := http.Get(base + "/2010-04-01/Accounts.json"); err == nil {
			resp.Body.Close()
			return base
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("prism did not listen within 90s:\n%s", out.String())
	return ""
}

// Reply is one scripted answer of the fake.
type Reply struct {
	Status     int           // HTTP status; 0 is 201 with a created message
	Code       int           // Twilio error code in the body
	Message    string        // Twilio error message in the body
	RetryAfter string        // Retry-After header
	Delay      time.Duration // wait before answering (to provoke client timeouts)
	Raw        string        // a body that is not Twilio's JSON (as a load balancer's 502 page)
}

// Fake is a Twilio Messages API of the test's own.
type Fake struct {
	URL string

	mu      sync.Mutex
	script  []Reply
	creates []url.Values
}

// StartFake starts a fake answering the creates with replies in order (the
// last one repeats; none means every create succeeds). It stops with the test.
func StartFake(t testing.TB, replies ...Reply) *Fake {
	t.Helper()
	f := &Fake{script: replies}
	srv := &http.Server{Handler: http.HandlerFunc(f.serve), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	f.URL = "http://" + ln.Addr().String()
	return f
}

// Creates returns the form of every create received, in order.
func (f *Fake) Creates() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]url.Values(nil), f.creates...)
}

// SetReplies replaces the script.
func (f *Fake) SetReplies(replies ...Reply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script = replies
}

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	user, pass, _ := r.BasicAuth()
	if user != AccountSID || pass != AuthToken {
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]any{"code": 20003, "message": "Authenticate", "status": 401})
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/2010-04-01/Accounts/"+AccountSID+"/Messages.json" {
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]any{"code": 20404, "message": "The requested resource was not found", "status": 404})
		return
	}
	if err := r.ParseForm(); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.creates = append(f.creates, r.PostForm)
	var rep Reply
	if len(f.script) > 0 {
		rep = f.script[0]
		if len(f.script) > 1 {
			f.script = f.script[1:]
		}
	}
	f.mu.Unlock()
	if rep.Delay > 0 {
		select {
		case <-time.After(rep.Delay):
		case <-r.Context().Done():
			return
		}
	}
	if rep.RetryAfter != "" {
		w.Header().Set("Retry-After", rep.RetryAfter)
	}
	switch {
	case rep.Raw != "":
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(rep.Status)
		_, _ = io.WriteString(w, rep.Raw)
	case rep.Status == 0 || rep.Status < 300:
		to, body := r.PostForm.Get("To"), r.PostForm.Get("Body")
		if to == "" || body == "" {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]any{"code": 21604, "message": "A 'To' phone number and a 'Body' are required.", "status": 400})
			return
		}
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"sid": "SM" + randomHex(16), "account_sid": AccountSID, "status": "queued", "to": to,
			"from": r.PostForm.Get("From"), "body": body, "api_version": "2010-04-01", "direction": "outbound-api",
		})
	default:
		w.WriteHeader(rep.Status)
		_ = json.NewEncoder(w).Encode(map[string]any{"code": rep.Code, "message": rep.Message, "status": rep.Status,
			"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", rep.Code)})
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
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

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Sign computes X-Twilio-Signature as Twilio documents it (independently of
// twilio-go): base64 of HMAC-SHA1, keyed by the auth token, of the full URL
// followed by each POST parameter's name and value, sorted by name.
func Sign(authToken, fullURL string, form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range keys {
		for _, v := range form[k] {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	m := hmac.New(sha1.New, []byte(authToken))
	m.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

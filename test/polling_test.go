package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawPolling is an Engine.IO v4 long-polling session driven by hand, to send
// what no well-behaved client sends.
type rawPolling struct {
	t   testing.TB
	url string
	sid string
}

// openPolling does the Engine.IO handshake and the Socket.IO CONNECT with tok,
// and reads the CONNECT answer.
func openPolling(t testing.TB, srv *server, tok string) *rawPolling {
	t.Helper()
	code, body := httpDo(t, "GET", srv.URL+"/socket.io/?EIO=4&transport=polling", "", 5*time.Second)
	if code != 200 || !strings.HasPrefix(body, "0") {
		t.Fatalf("handshake: %d %q", code, body)
	}
	var open struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal([]byte(body[1:]), &open); err != nil || open.SID == "" {
		t.Fatalf("handshake body %q: %v", body, err)
	}
	p := &rawPolling{t: t, url: srv.URL + "/socket.io/?EIO=4&transport=polling&sid=" + open.SID, sid: open.SID}
	auth, _ := json.Marshal(map[string]any{"token": tok})
	if code, body := p.post("40" + string(auth)); code != 200 {
		t.Fatalf("CONNECT: %d %q", code, body)
	}
	if code, body := p.get(5 * time.Second); code != 200 || !strings.HasPrefix(body, "40{") {
		t.Fatalf("CONNECT answer: %d %q", code, body)
	}
	return p
}

func (p *rawPolling) post(payload string) (int, string) {
	p.t.Helper()
	return httpDo(p.t, "POST", p.url, payload, 5*time.Second)
}

// get polls once; it returns status 0 when no answer came within timeout.
func (p *rawPolling) get(timeout time.Duration) (int, string) {
	p.t.Helper()
	return httpDo(p.t, "GET", p.url, "", timeout)
}

func httpDo(t testing.TB, method, url, body string, timeout time.Duration) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ""
		}
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil && ctx.Err() != nil {
		return 0, ""
	}
	return resp.StatusCode, string(b)
}

// closedSession reports whether the session is gone: a poll answers 400
// (unknown session) or carries the Engine.IO CLOSE packet, within timeout.
func (p *rawPolling) closedSession(timeout time.Duration) (bool, string) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	var seen []string
	for time.Now().Before(deadline) {
		code, body := p.get(time.Until(deadline))
		seen = append(seen, fmt.Sprintf("%d %q", code, body))
		switch {
		case code == 0:
			return false, strings.Join(seen, ", ")
		case code == 400:
			return true, strings.Join(seen, ", ")
		case code == 200:
			for _, pkt := range strings.Split(body, "\x1e") {
				if pkt == "1" {
					return true, strings.Join(seen, ", ")
				}
			}
		default:
			return false, strings.Join(seen, ", ")
		}
	}
	return false, strings.Join(seen, ", ")
}

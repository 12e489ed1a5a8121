package test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestSlowBodyIsCut trickles a request body a byte every 100 ms to the
// public OTP route (no credential needed). The server must answer 408 and
// close the connection once HTTP_READ_TIMEOUT has passed, long before the
// body is complete: otherwise a few hundred such clients hold the process's
// file descriptors for as long as they like.
func TestSlowBodyIsCut(t *testing.T) {
	srv := startServer(t, "HTTP_READ_TIMEOUT=1s")
	const bodyLen = 200 // 20 s at the trickle's pace
	for _, tc := range []struct {
		name    string
		head    string
		trickle string
		want    string // the status line's start ("" matches a close without an answer too)
	}{
		{"body", "POST /sms/request-otp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\n", bodyLen), strings.Repeat(" ", bodyLen), "HTTP/1.1 408"},
		{"headers", "POST /sms/request-otp HTTP/1.1\r\n", strings.Repeat("X-Slow: 1\r\n", bodyLen/11+1), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write([]byte(tc.head)); err != nil {
				t.Fatal(err)
			}
			var sent atomic.Int64
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for i := 0; i < len(tc.trickle); i++ {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					if _, err := conn.Write([]byte{tc.trickle[i]}); err != nil {
						return
					}
					sent.Add(1)
				}
			}()
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			rd := bufio.NewReader(conn)
			status, _ := rd.ReadString('\n')
			if !strings.HasPrefix(status, tc.want) {
				t.Fatalf("answer %q, want %q", status, tc.want)
			}
			// Then the connection is closed: reading ends with EOF, not at our 30 s deadline.
			if _, err := io.ReadAll(rd); isTimeout(err) {
				t.Fatalf("connection still open after %q", status)
			}
			if n := sent.Load(); n >= int64(len(tc.trickle)) {
				t.Fatalf("the server waited for all %d trickled bytes", n)
			}
		})
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestSocketsOutliveRequestDeadlines keeps a long-polling client and a
// WebSocket client connected across several read and write deadlines: the
// per-request bounds must not cut a held poll or an upgraded connection.
func TestSocketsOutliveRequestDeadlines(t *testing.T) {
	srv := startServer(t, "HTTP_READ_TIMEOUT=1s", "HTTP_WRITE_TIMEOUT=1s", "SOCKET_PING_INTERVAL=2s", "SOCKET_PING_TIMEOUT=2s")
	c := newJS(t, srv)
	poll := c.connect("poll", token(alice), map[string]any{"transports": []string{"polling"}})
	wsock := c.connect("ws", token(bob))
	c.waitEvent("poll", "unreadNotificationCount")
	c.waitEvent("ws", "unreadNotificationCount")
	time.Sleep(5 * time.Second) // time passes: five read deadlines and two ping cycles, nothing is awaited

	for _, u := range []struct{ name, user, sid string }{{"poll", alice, poll["sid"].(string)}, {"ws", bob, wsock["sid"].(string)}} {
		code, body := srv.api(t, "POST", "/notifications", serviceKey(), map[string]any{
			"userId": u.user, "title": "t", "message": "after the deadlines", "type": "system"})
		if code != 201 {
			t.Fatalf("POST /notifications: %d %v", code, body)
		}
		n, _ := c.waitEvent(u.name, "newNotification").(map[string]any)
		if n["message"] != "after the deadlines" {
			t.Fatalf("%s got %v", u.name, n)
		}
		if st := c.state(u.name); st["connected"] != true || st["sid"] != u.sid {
			t.Fatalf("%s reconnected or dropped across the deadlines: %v (first sid %s)", u.name, st, u.sid)
		}
	}
}

package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fitmate/commserver/internal/stickyproxy"
	"github.com/redis/go-redis/v9"
)

// clusterPods starts n server processes on one Redis (a prefix of the
// test's own) and one store (an embedded FerretDB served over TCP by the
// test), as pods of one deployment. extra is added to every pod's
// environment (REDIS_URL=... there replaces the shared Redis).
func clusterPods(t *testing.T, n int, extra ...string) (pods []*server, rdb *redis.Client, prefix string) {
	t.Helper()
	rdb, prefix = testRedis(t, "test:e2e:")
	env := []string{"REDIS_URL=" + redisURL, "CLUSTER_REDIS_PREFIX=" + prefix, "SMS_REDIS_PREFIX=" + prefix + "sms:",
		"PRESENCE_GRACE=500ms", "PRESENCE_POD_TTL=3s", "MONGODB_URI=" + serveFerretDB(t)}
	env = append(env, extra...)
	for range n {
		pods = append(pods, startServer(t, env...))
	}
	return pods, rdb, prefix
}

// twoPods starts two pods behind the sticky proxy with the given affinity.
func twoPods(t *testing.T, aff stickyproxy.Affinity) (pods []*server, front string, rdb *redis.Client, prefix string) {
	t.Helper()
	pods, rdb, prefix = clusterPods(t, 2)
	px, err := stickyproxy.New([]string{pods[0].URL, pods[1].URL}, stickyproxy.Options{Affinity: aff},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(px)
	t.Cleanup(srv.Close)
	return pods, srv.URL, rdb, prefix
}

// Long-polling across two pods without affinity fails as it does with
// Node's server: the pod that did not open the session answers 400
// "Session ID unknown". With the proxy's affinity it works, polling only
// or upgraded to WebSocket.
func TestLongPollingNeedsAffinity(t *testing.T) {
	t.Run("none", func(t *testing.T) {
		_, front, _, _ := twoPods(t, stickyproxy.None)
		code, body := httpDo(t, "GET", front+"/socket.io/?EIO=4&transport=polling", "", 5*time.Second)
		if code != 200 || !strings.HasPrefix(body, "0{") {
			t.Fatalf("handshake: %d %q", code, body)
		}
		var open struct {
			SID string `json:"sid"`
		}
		if err := json.Unmarshal([]byte(body[1:]), &open); err != nil {
			t.Fatal(err)
		}
		code, body = httpDo(t, "POST", front+"/socket.io/?EIO=4&transport=polling&sid="+open.SID, "40", 5*time.Second)
		if code != 400 || !strings.Contains(body, "Session ID unknown") {
			t.Fatalf("the other pod answered %d %q, want 400 Session ID unknown", code, body)
		}
		// The real client fails to connect over polling.
		j := newJS(t, &server{URL: front})
		r := j.tryConnect("a", map[string]any{"token": token(alice)}, map[string]any{"transports": []string{"polling"}})
		if r["ok"] == true {
			t.Fatal("socket.io-client connected over polling across two pods without affinity")
		}
		t.Logf("socket.io-client without affinity: %v", r["error"])
	})
	t.Run("sid", func(t *testing.T) {
		pods, front, rdb, prefix := twoPods(t, stickyproxy.SessionID)
		j := newJS(t, &server{URL: front})
		for i, transports := range [][]string{{"polling"}, {"polling"}, {"polling", "websocket"}, {"websocket"}} {
			name := string(rune('a' + i))
			r := j.connect(name, token(alice), map[string]any{"transports": transports})
			for range 5 { // several round trips on the session's pod
				ack := j.emitAck(name, "noSuchEvent", map[string]any{})
				if ack["ok"] != false {
					t.Fatalf("%s over %v: ack %v", name, transports, ack)
				}
			}
			t.Logf("%s over %v: connected on %v", name, transports, r["transport"])
		}
		// Both pods record alice's sockets in the shared presence.
		ctx := context.Background()
		eventually(t, 5*time.Second, func() error {
			if n := rdb.HLen(ctx, prefix+"{presence:v1}:user:"+alice).Val(); n != 4 {
				return fmt.Errorf("presence holds %d of alice's sockets, want 4", n)
			}
			return nil
		})
		if n := rdb.ZCard(ctx, prefix+"{presence:v1}:pods").Val(); n != int64(len(pods)) {
			t.Fatalf("%d pods hold a lease, want %d", n, len(pods))
		}
		for _, name := range []string{"a", "b", "c", "d"} {
			j.close(name)
		}
		eventually(t, 5*time.Second, func() error {
			if n := rdb.Exists(ctx, prefix+"{presence:v1}:user:"+alice).Val(); n != 0 {
				return fmt.Errorf("alice's sockets still recorded after she closed them")
			}
			return nil
		})
	})
	t.Run("cookie", func(t *testing.T) {
		_, front, _, _ := twoPods(t, stickyproxy.Cookie)
		j := newJS(t, &server{URL: front})
		// Node's client keeps the proxy's cookie only with withCredentials.
		j.connect("kept", token(alice), map[string]any{"transports": []string{"polling"}, "withCredentials": true})
		for range 5 {
			if ack := j.emitAck("kept", "noSuchEvent", map[string]any{}); ack["ok"] != false {
				t.Fatalf("ack %v", ack)
			}
		}
		r := j.tryConnect("dropped", map[string]any{"token": token(bob)}, map[string]any{"transports": []string{"polling"}})
		if r["ok"] == true {
			t.Fatal("connected over polling with cookie affinity but no cookie jar: the proxy must have lost it")
		}
	})
}

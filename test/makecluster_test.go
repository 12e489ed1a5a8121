package test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"github.com/redis/go-redis/v9"
)

// `make cluster`'s script: two pods on one store and one Redis behind the
// sticky proxy, reachable through the proxy, all stopped by one SIGTERM.
// The store is FerretDB served on a port by this test (what cmd/devstore
// does), given to the script as MONGODB_URI.
func TestMakeClusterScript(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	mongoURI := serveFerretDB(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "test:makecluster:" + hex.EncodeToString(b) + ":"
	opt, _ := redis.ParseURL(redisURL)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		rdb.Close()
	})

	base := consecutivePorts(t, 2)
	proxy := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command("bash", "scripts/cluster.sh")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "PODS=2", fmt.Sprintf("BASE_PORT=%d", base), "PROXY_ADDR="+proxy,
		"REDIS_URL="+redisURL, "CLUSTER_REDIS_PREFIX="+prefix, "MONGODB_URI="+mongoURI, "JWT_SECRET="+testSecret,
		"SERVICE_API_KEY="+testAPIKey, "CORS_ORIGIN="+appOrigin, "LOG_LEVEL=warn", "LOG_FORMAT=text")
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
			}
		}
		if t.Failed() {
			t.Logf("cluster.sh:\n%s", tail(logs.String(), 80))
		}
	})

	front := &server{URL: "http://" + proxy}
	deadline := time.Now().Add(5 * time.Minute) // the script builds the binaries first
	for {
		resp, err := http.Get(front.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case err := <-exited:
			stopped = true
			t.Fatalf("cluster.sh exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the cluster is not ready through the proxy in 5 minutes")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := rdb.ZCard(context.Background(), prefix+"{presence:v1}:pods").Val(); n != 2 {
		t.Fatalf("%d pods hold a presence lease, want 2", n)
	}
	front.putRoom(t, "room-make-cluster", alice, bob) // REST on one pod, the shared store
	j := newJS(t, front)
	j.connect("a", token(alice), map[string]any{"transports": []string{"polling"}})
	if ack := j.emitAck("a", "joinChat", map[string]any{"chatRoomId": "room-make-cluster"}); ack["ok"] != true {
		t.Fatalf("joinChat through the proxy: %v", ack)
	}

	// One SIGTERM stops everything: no pod is left listening.
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		stopped = true
	case <-time.After(40 * time.Second):
		t.Fatal("cluster.sh did not stop within 40s of SIGTERM")
	}
	for _, port := range []int{base, base + 1} {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			c.Close()
			t.Errorf("a pod still listens on %d after the script stopped", port)
		}
	}
}

// serveFerretDB serves an embedded store on a loopback port until the test ends.
func serveFerretDB(t *testing.T) string {
	t.Helper()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: fmt.Sprintf("127.0.0.1:%d", freePort(t))},
		Handler:   "sqlite",
		SQLiteURL: "file:" + t.TempDir() + "/",
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return f.MongoDBURI()
}

// consecutivePorts finds n free consecutive loopback ports and returns the first.
func consecutivePorts(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		first := freePort(t)
		ok := true
		for i := 1; i < n && ok; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", first+i))
			if err != nil {
				ok = false
				continue
			}
			l.Close()
		}
		if ok {
			return first
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

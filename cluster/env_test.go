package cluster_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/fitmate/commserver/cluster"
	"github.com/redis/go-redis/v9"
)

// redisURL is the real Redis of the tests (CI runs one on 127.0.0.1:6379).
func redisURL() string {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379"
}

var unsafeKeyChars = regexp.MustCompile(`[^A-Za-z0-9_]+`)

// testRedis connects to the real Redis and returns a client and a key prefix
// of this test's own (its name and a random suffix); its keys go with the
// test. Redis is shared: nothing here touches other keys.
func testRedis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	rdb, err := cluster.NewClient(redisURL(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("these tests need Redis at %s (CI runs one): %v", redisURL(), err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "test:" + unsafeKeyChars.ReplaceAllString(t.Name(), "_") + ":" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		rdb.Close()
	})
	return rdb, prefix
}

// deadRedis is a client of an address where nothing listens: Redis is down.
func deadRedis(t *testing.T) *redis.Client {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	rdb, err := cluster.NewClient("redis://"+addr, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

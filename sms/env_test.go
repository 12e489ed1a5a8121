package sms_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/fitmate/commserver/sms"
	"github.com/fitmate/commserver/store"
	"github.com/redis/go-redis/v9"
)

// testRedis connects to the real Redis (REDIS_URL, default 127.0.0.1:6379)
// and returns it with a key prefix of this test's own; the keys go with the test.
func testRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	u := os.Getenv("REDIS_URL")
	if u == "" {
		u = "redis://127.0.0.1:6379"
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("these tests need Redis at %s (CI runs one): %v", u, err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "test:sms:" + hex.EncodeToString(b) + ":"
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
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 500 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// testStore opens the real embedded store.
func testStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir()}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(context.Background()) })
	return db
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// recorder is a Sender that keeps what it was given (a seam this package
// owns; the Twilio path is tested against Prism beside it).
type recorder struct {
	mu   sync.Mutex
	msgs []sms.Message
	err  error
	echo bool // failures quote the body back, as a careless provider might
}

func (r *recorder) Send(_ context.Context, m sms.Message) (sms.Receipt, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
	if r.err != nil {
		if se, ok := r.err.(*sms.SendError); ok && r.echo {
			c := *se
			c.Message += " (body: " + m.Body + ")"
			return sms.Receipt{}, &c
		}
		return sms.Receipt{}, r.err
	}
	return sms.Receipt{SID: fmt.Sprintf("SM%032d", len(r.msgs)), Status: sms.StatusQueued}, nil
}

func (r *recorder) sent() []sms.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sms.Message(nil), r.msgs...)
}

var pepper = []byte("test-pepper-0123456789abcdef0123")

// fixture is a Service over the real store and the real Redis.
type fixture struct {
	svc    *sms.Service
	db     *store.DB
	rdb    *redis.Client
	prefix string
	sent   *recorder
}

type fixtureOpts struct {
	sender  sms.Sender
	otp     sms.OTPOptions
	opts    sms.Options
	noRedis bool
	rdb     *redis.Client // instead of the real one (deadRedis)
}

func newFixture(t *testing.T, fo fixtureOpts) *fixture {
	t.Helper()
	f := &fixture{db: testStore(t), sent: &recorder{}}
	f.rdb, f.prefix = testRedis(t)
	rdb := f.rdb
	if fo.rdb != nil {
		rdb = fo.rdb
	}
	var sender sms.Sender = f.sent
	if fo.sender != nil {
		sender = fo.sender
	}
	fo.otp.Prefix, fo.otp.Pepper = f.prefix, pepper
	fo.opts.Pepper = pepper
	var otp *sms.Verifications
	var limits sms.Limiter = sms.NewMemoryLimiter()
	if !fo.noRedis {
		otp = sms.NewVerifications(rdb, fo.otp)
		limits = sms.NewRedisLimiter(rdb, f.prefix)
	}
	f.svc = sms.NewService(f.db, sender, limits, otp, mustNumbers(t, "KR", "KR"), fo.opts, quiet())
	return f
}

// logs returns the log entries of texts to a number, newest first.
func (f *fixture) logs(t *testing.T, e164 string) []sms.LogEntry {
	t.Helper()
	got, err := f.db.SMSLogsTo(context.Background(), e164, 100)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

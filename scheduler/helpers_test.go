package scheduler_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fitmate/commserver/notify"
	"github.com/fitmate/commserver/presence/presencetest"
	"github.com/fitmate/commserver/scheduler"
	"github.com/fitmate/commserver/sms"
	"github.com/fitmate/commserver/store"
	"github.com/fitmate/commserver/store/storetest"
	twiliomock "github.com/fitmate/commserver/test/twilio-mock"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func quiet() *slog.Logger {
	if os.Getenv("SCHEDULER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// seoul is the default time zone.
var seoul, _ = time.LoadLocation("Asia/Seoul")

// oid makes test user ids that look like ObjectIds (as the main backend's do).
func oid(n int) string { return fmt.Sprintf("%024x", 0xa000+n) }

// user is a users document of the main backend.
func user(id, name, phone string, smsOptIn bool) bson.M {
	o, _ := bson.ObjectIDFromHex(id)
	u := bson.M{"_id": o, "name": name, "smsNotificationEnabled": smsOptIn}
	if phone != "" {
		u["phoneNumber"] = phone
	}
	return u
}

// world is one store shared by the test's scheduler instances (as pods share MongoDB).
type world struct {
	t      *testing.T
	dir    string
	db     *store.DB
	pub    *publisher // what the notification services pushed
	closed sync.Once
}

// newWorld seeds users, then opens the real embedded store.
func newWorld(t *testing.T, users ...any) *world {
	t.Helper()
	dir := t.TempDir()
	if len(users) > 0 {
		if err := storetest.Insert(dir, "users", users...); err != nil {
			t.Fatal(err)
		}
	}
	db, err := store.Open(context.Background(), store.Options{DataDir: dir, Timeout: 10 * time.Second}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, dir: dir, db: db, pub: &publisher{}}
	t.Cleanup(func() { w.close() })
	select {
	case <-db.IndexesReady():
	case <-time.After(30 * time.Second):
		t.Fatal("indexes not created in 30s")
	}
	return w
}

// close closes the store (once); find reads the files afterwards.
func (w *world) close() {
	w.closed.Do(func() {
		if err := w.db.Close(context.Background()); err != nil {
			w.t.Error(err)
		}
	})
}

// find closes the store and returns the documents of collection matching filter.
func (w *world) find(collection string, filter any) []bson.M {
	w.t.Helper()
	w.close()
	docs, err := storetest.Find(w.dir, collection, filter)
	if err != nil {
		w.t.Fatal(err)
	}
	return docs
}

// notifier returns a notification service over the world's store, as each pod has its own.
func (w *world) notifier() *notify.Service {
	n := notify.New(w.db, w.pub, presencetest.NewOnline(), nil, notify.Options{}, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.Run(ctx) }()
	w.t.Cleanup(func() { cancel(); <-done })
	return n
}

// texter returns an SMS service over the world's store sending to Twilio at base.
func (w *world) texter(base string) *sms.Service {
	w.t.Helper()
	numbers, err := sms.NewNumbers("KR", []string{"KR"})
	if err != nil {
		w.t.Fatal(err)
	}
	tw, err := sms.NewTwilioSender(sms.TwilioOptions{AccountSID: twiliomock.AccountSID, AuthToken: twiliomock.AuthToken,
		From: twiliomock.From, BaseURL: base, Timeout: 3 * time.Second, MaxRetries: 0})
	if err != nil {
		w.t.Fatal(err)
	}
	return sms.NewService(w.db, tw, sms.NewMemoryLimiter(), nil, numbers, sms.Options{AppURL: "https://fitmate.example"}, quiet())
}

// connected records that users connected at t (the recorder's write).
func (w *world) connected(t time.Time, users ...string) {
	w.t.Helper()
	seen := map[string]time.Time{}
	for _, u := range users {
		seen[u] = t
	}
	if err := w.db.RecordConnections(context.Background(), seen); err != nil {
		w.t.Fatal(err)
	}
}

// workout stores a workout_completed notification as POST /notifications/workout-completed does.
func (w *world) workout(userID string, at time.Time, data map[string]any) {
	w.t.Helper()
	_, err := w.db.InsertNotifications(context.Background(), []notify.Notification{{UserID: userID, Title: "운동 완료! 🎉",
		Message: "done", Type: notify.TypeWorkoutCompleted, Data: data, Priority: notify.PriorityNormal, CreatedAt: at, UpdatedAt: at}})
	if err != nil {
		w.t.Fatal(err)
	}
}

// ofType returns the user's stored notifications of a type.
func (w *world) ofType(userID, typ string) []notify.Notification {
	w.t.Helper()
	ns, err := w.db.Notifications(context.Background(), userID, time.Now(), 0, 1000)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []notify.Notification
	for _, n := range ns {
		if n.Type == typ {
			out = append(out, n)
		}
	}
	return out
}

// instance is one scheduler, as one pod runs it.
type instance struct {
	*scheduler.Scheduler
	reg *prometheus.Registry
}

type setup struct {
	locker  scheduler.Locker
	notify  scheduler.Notifier
	sms     scheduler.Texter
	store   scheduler.Store
	options func(*scheduler.Options)
}

func (w *world) instance(name string, s setup) *instance {
	w.t.Helper()
	if s.locker == nil {
		s.locker = scheduler.NewLocalLocker(nil)
	}
	if s.notify == nil {
		s.notify = w.notifier()
	}
	if s.store == nil {
		s.store = w.db
	}
	o := scheduler.Options{Enabled: true, Location: seoul, BatchSize: 3, Instance: name, LockTTL: 3 * time.Second}
	if s.options != nil {
		s.options(&o)
	}
	reg := prometheus.NewRegistry()
	d := scheduler.Deps{Store: s.store, Notify: s.notify, Locker: s.locker, Metrics: reg, Log: quiet().With("instance", name)}
	if s.sms != nil {
		d.SMS = s.sms
	}
	sc, err := scheduler.New(d, o)
	if err != nil {
		w.t.Fatal(err)
	}
	return &instance{Scheduler: sc, reg: reg}
}

// count returns the value of a counter of the instance's registry with these labels.
func (in *instance) count(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := in.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func matches(m *dto.Metric, labels map[string]string) bool {
	for k, v := range labels {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// publisher counts what notification services pushed.
type publisher struct {
	mu     sync.Mutex
	pushed map[string]int // user/title -> newNotification pushes
}

func (p *publisher) PublishUser(_ context.Context, userID, event string, payload any) error {
	if event != notify.EventNewNotification {
		return nil
	}
	n, _ := payload.(notify.Notification)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pushed == nil {
		p.pushed = map[string]int{}
	}
	p.pushed[userID+"/"+n.Title]++
	return nil
}

func (p *publisher) pushes(userID, title string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pushed[userID+"/"+title]
}

// testRedis connects to the real Redis and returns a key prefix of this test's own.
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
	prefix := "test:scheduler:" + strings.ReplaceAll(t.Name(), "/", ":") + ":" + hex.EncodeToString(b) + ":"
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

// texts counts the creates Twilio received per destination.
func texts(f *twiliomock.Fake) map[string]int {
	out := map[string]int{}
	for _, c := range f.Creates() {
		out[c.Get("To")]++
	}
	return out
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noLock lets every run take the lock at once: what the ledger alone guarantees.
type noLock struct{}

func (noLock) TryLock(context.Context, string, time.Duration) (scheduler.Lease, error) {
	return noLease{}, nil
}

type noLease struct{}

func (noLease) Extend(context.Context, time.Duration) error { return nil }
func (noLease) Release(context.Context) error               { return nil }

// proxy forwards TCP to target while up: Redis going down and coming back.
type proxy struct {
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: l.Addr().String(), target: target}
	l.Close() // down until up()
	t.Cleanup(p.down)
	return p
}

func (p *proxy) up(t *testing.T) {
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.ln = l
	p.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
}

func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

var errKilled = errors.New("killed")

package scheduler_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/fitmate/commserver/scheduler"
	twiliomock "github.com/fitmate/commserver/test/twilio-mock"
	"github.com/jonboulle/clockwork"
	"github.com/redis/go-redis/v9"
)

// A run's lock expires while it is stuck (gocron #799): another instance
// takes the lock and runs the same slot meanwhile. Both runs go on; the
// first one's extension fails and is counted; nobody is notified or texted twice.
func TestLockExpiredMidRun(t *testing.T) {
	now := at("2025-01-15T00:00:01Z")
	w, cast := newReminderWorld(t, now)
	rdb, prefix := testRedis(t)
	tw := twiliomock.StartFake(t)
	opts := func(o *scheduler.Options) { o.Clock = clockwork.NewFakeClockAt(now) }

	stuck, release := make(chan struct{}), make(chan struct{})
	n := 0
	slow := hookNotifier{Notifier: w.notifier(), after: func(string, bool) {
		if n++; n == 2 {
			close(stuck)
			<-release
		}
	}}
	a := w.instance("pod-a", setup{locker: scheduler.NewRedisLocker(rdb, prefix), notify: slow, sms: w.texter(tw.URL), options: opts})
	b := w.instance("pod-b", setup{locker: scheduler.NewRedisLocker(rdb, prefix), sms: w.texter(tw.URL), options: opts})
	var wg sync.WaitGroup
	wg.Add(1)
	var first scheduler.Run
	go func() {
		defer wg.Done()
		var err error
		if first, err = a.RunNow(context.Background(), reminder); err != nil {
			t.Errorf("pod-a: %v", err)
		}
	}()
	<-stuck
	if err := rdb.Del(context.Background(), prefix+"job:"+reminder).Err(); err != nil { // the lock expires
		t.Fatal(err)
	}
	second, err := b.RunNow(context.Background(), reminder)
	if err != nil || second.State != scheduler.StateOK {
		t.Fatalf("pod-b: %+v, %v", second, err)
	}
	eventually(t, 5*time.Second, "pod-a notices it lost the lock", func() bool {
		return a.count(t, "commserver_job_lock_lost_total", map[string]string{"job": reminder}) == 1
	})
	close(release)
	wg.Wait()
	if first.State != scheduler.StateOK || first.Counts.Sent != 2 || first.Counts.Skipped != 5 {
		t.Errorf("pod-a's run: %+v; want its 2 users sent, the rest found served", first.Counts)
	}
	cast.check(t, w, tw)
	// The ledger shows the run that took the slot over.
	if r, _ := w.db.RunOf(context.Background(), reminder, at("2025-01-15T00:00:00Z")); r.ID != second.ID || r.State != scheduler.StateOK {
		t.Errorf("ledger: %+v", r)
	}
}

// Redis down when 09:00 KST fires: both instances skip (nobody runs it on
// every pod), count it and show it; when Redis returns, the catch-up sweep
// runs the slot once.
func TestRedisDownSkippedCountedCaughtUp(t *testing.T) {
	start := at("2025-01-14T23:59:50Z")
	w, cast := newReminderWorld(t, start)
	real, prefix := testRedis(t)
	px := newProxy(t, real.Options().Addr)
	clock := clockwork.NewFakeClockAt(start)
	var pods []*instance
	for _, name := range []string{"pod-a", "pod-b"} {
		rdb := redis.NewClient(&redis.Options{Addr: px.addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond,
			ReadTimeout: time.Second, WriteTimeout: time.Second})
		t.Cleanup(func() { rdb.Close() })
		pods = append(pods, w.instance(name, setup{locker: scheduler.NewRedisLocker(rdb, prefix), options: func(o *scheduler.Options) {
			o.Clock = clock
			o.CatchUpWindow = 6 * time.Hour
			o.Schedules = map[string]string{scheduler.JobWeeklyReport: "off", scheduler.JobGoalCheck: "off", scheduler.JobCleanup: "off"}
		}}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	for _, p := range pods {
		running.Add(1)
		go func() { defer running.Done(); _ = p.Run(ctx) }()
	}
	defer func() { cancel(); running.Wait() }()
	for _, p := range pods {
		eventually(t, 5*time.Second, "gocron schedules 09:00 KST", func() bool { return p.Status(ctx)[0].NextRun != nil })
	}

	clock.Advance(10 * time.Second) // 09:00 KST, Redis down
	for _, p := range pods {
		eventually(t, 5*time.Second, "the skip is counted", func() bool {
			return p.count(t, "commserver_job_runs_total", map[string]string{"job": reminder, "trigger": "schedule",
				"result": "skipped_unavailable"}) == 1
		})
		if s := p.Status(ctx)[0].LastSkipped; s == nil || s.Reason != "skipped_unavailable" {
			t.Errorf("status shows the skip: %+v", s)
		}
	}
	for _, u := range cast.active {
		if got := len(w.ofType(u, "workout_reminder")); got != 0 {
			t.Fatalf("user %s reminded while Redis was down", u)
		}
	}

	px.up(t) // Redis is back
	clock.Advance(2 * time.Minute)
	eventually(t, 10*time.Second, "the catch-up run", func() bool {
		r, err := w.db.LastRun(ctx, reminder)
		return err == nil && r.State == scheduler.StateOK && r.Trigger == scheduler.TriggerCatchUp
	})
	waitIdle(t, w, pods...)
	cast.check(t, w, nil)
	var caught float64
	for _, p := range pods {
		caught += p.count(t, "commserver_job_runs_total", map[string]string{"job": reminder, "trigger": "catch-up", "result": "ok"})
	}
	if caught != 1 {
		t.Errorf("%v catch-up runs, want 1", caught)
	}
}

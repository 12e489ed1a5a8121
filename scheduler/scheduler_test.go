package scheduler_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/config"
	"github.com/fitmate/commserver/notify"
	"github.com/fitmate/commserver/scheduler"
	"github.com/jonboulle/clockwork"
)

// The jobs config reads SCHEDULER_<NAME> for are the scheduler's.
func TestConfigNamesTheJobs(t *testing.T) {
	var names []string
	for _, j := range scheduler.Jobs {
		names = append(names, j.Name)
	}
	if !slices.Equal(names, config.SchedulerJobs) {
		t.Fatalf("scheduler jobs %v, config reads %v", names, config.SchedulerJobs)
	}
}

// runScheduler runs s until the test ends.
func runScheduler(t *testing.T, s *instance) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return cancel
}

func nextRun(s *instance, job string) time.Time {
	for _, st := range s.Status(context.Background()) {
		if st.Name == job && st.NextRun != nil {
			return time.Time(*st.NextRun)
		}
	}
	return time.Time{}
}

// gocron fires in Seoul time on an injected clock: the reminder at 09:00
// KST, which is 00:00 UTC, and the weekly report on Sunday at 18:00 KST,
// which is Sunday 09:00 UTC.
func TestFiresOnKoreasClock(t *testing.T) {
	t.Run("daily-workout-reminder at 09:00 KST = 00:00 UTC", func(t *testing.T) {
		w := newWorld(t)
		w.connected(at("2025-01-14T12:00:00Z"), oid(1))
		clock := clockwork.NewFakeClockAt(at("2025-01-14T23:59:00Z"))
		pod := w.instance("pod-a", setup{options: func(o *scheduler.Options) {
			o.Clock = clock
			o.Schedules = map[string]string{scheduler.JobWeeklyReport: "off", scheduler.JobGoalCheck: "off", scheduler.JobCleanup: "off"}
		}})
		runScheduler(t, pod)
		eventually(t, 5*time.Second, "scheduled", func() bool { return nextRun(pod, reminder).Equal(at("2025-01-15T00:00:00Z")) })
		clock.Advance(59 * time.Second)
		time.Sleep(100 * time.Millisecond)
		if _, err := w.db.LastRun(context.Background(), reminder); !errors.Is(err, commserver.ErrNotFound) {
			t.Fatalf("ran before 09:00 KST: %v", err)
		}
		clock.Advance(time.Second)
		eventually(t, 5*time.Second, "the 09:00 KST run", func() bool {
			r, err := w.db.LastRun(context.Background(), reminder)
			return err == nil && r.State == scheduler.StateOK && time.Time(r.Slot).Equal(at("2025-01-15T00:00:00Z")) &&
				r.Trigger == scheduler.TriggerSchedule && r.Period == "2025-01-15T09:00+09:00"
		})
		if got := len(w.ofType(oid(1), notify.TypeWorkoutReminder)); got != 1 {
			t.Errorf("%d reminders", got)
		}
		eventually(t, 5*time.Second, "the next one", func() bool { return nextRun(pod, reminder).Equal(at("2025-01-16T00:00:00Z")) })
	})
	t.Run("weekly-report on Sunday 18:00 KST = Sunday 09:00 UTC", func(t *testing.T) {
		w := newWorld(t)
		w.workout(oid(1), at("2025-01-17T03:00:00Z"), workoutData("요가", 30, 100))
		clock := clockwork.NewFakeClockAt(at("2025-01-19T08:59:00Z"))
		pod := w.instance("pod-a", setup{options: func(o *scheduler.Options) {
			o.Clock = clock
			o.Schedules = map[string]string{reminder: "off", scheduler.JobGoalCheck: "off", scheduler.JobCleanup: "off"}
		}})
		runScheduler(t, pod)
		eventually(t, 5*time.Second, "scheduled", func() bool {
			return nextRun(pod, scheduler.JobWeeklyReport).Equal(at("2025-01-19T09:00:00Z"))
		})
		clock.Advance(time.Minute)
		eventually(t, 5*time.Second, "the Sunday 18:00 KST run", func() bool {
			r, err := w.db.LastRun(context.Background(), scheduler.JobWeeklyReport)
			return err == nil && r.State == scheduler.StateOK && r.Period == "2025-01-19T18:00+09:00" && r.Counts.Sent == 1
		})
		eventually(t, 5*time.Second, "the next one", func() bool {
			return nextRun(pod, scheduler.JobWeeklyReport).Equal(at("2025-01-26T09:00:00Z"))
		})
	})
}

// Stopping the scheduler (SIGTERM) lets a running job finish the recipient
// it is serving, then stop; Run returns only after that; the next run
// (here on another instance) serves the rest.
func TestStopLetsTheJobReachARecipientBoundary(t *testing.T) {
	now := at("2025-01-15T00:00:01Z")
	w, cast := newReminderWorld(t, now)
	inside, release := make(chan struct{}), make(chan struct{})
	var n atomic.Int32
	notifier := hookNotifier{Notifier: w.notifier(), after: func(string, bool) {
		if n.Add(1) == 1 {
			close(inside)
			<-release
		}
	}}
	opts := func(o *scheduler.Options) { o.Clock = clockwork.NewFakeClockAt(now) }
	pod := w.instance("pod-a", setup{notify: notifier, options: opts})
	ctx, stop := context.WithCancel(context.Background())
	returned := make(chan struct{})
	go func() { defer close(returned); _ = pod.Run(ctx) }()
	eventually(t, 5*time.Second, "started", func() bool { return nextRun(pod, reminder) != time.Time{} })

	id, err := pod.Trigger(ctx, reminder)
	if err != nil || id == "" {
		t.Fatalf("trigger: %q, %v", id, err)
	}
	<-inside
	if _, err := pod.Trigger(ctx, reminder); !errors.Is(err, commserver.ErrConflict) {
		t.Errorf("trigger while running: %v, want a conflict", err)
	}
	if _, err := pod.Trigger(ctx, "nope"); !errors.Is(err, commserver.ErrNotFound) {
		t.Errorf("unknown job: %v", err)
	}
	stop() // SIGTERM
	select {
	case <-returned:
		t.Fatal("Run returned while a recipient was being served")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	<-returned
	if _, err := pod.Trigger(context.Background(), reminder); !errors.Is(err, commserver.ErrUnavailable) {
		t.Errorf("trigger after stop: %v", err)
	}
	r, err := w.db.LastRun(context.Background(), reminder)
	if err != nil || r.State != scheduler.StateInterrupted || r.ID != id || r.Counts.Sent != 1 {
		t.Fatalf("ledger: %+v, %v; want the run interrupted after one user", r, err)
	}
	if _, err := w.instance("pod-b", setup{options: opts}).RunNow(context.Background(), reminder); err != nil {
		t.Fatal(err)
	}
	cast.check(t, w, nil)
}

// The scheduler disabled on an instance lists its jobs and runs none.
func TestDisabled(t *testing.T) {
	w := newWorld(t)
	pod := w.instance("pod-a", setup{options: func(o *scheduler.Options) { o.Enabled = false }})
	runScheduler(t, pod)
	st := pod.Status(context.Background())
	if len(st) != 4 || st[0].Enabled || st[0].NextRun != nil || st[0].TimeZone != "Asia/Seoul" || st[0].Schedule != "0 9 * * *" {
		t.Fatalf("status %+v", st)
	}
	if _, err := pod.Trigger(context.Background(), reminder); !errors.Is(err, commserver.ErrUnavailable) {
		t.Fatalf("trigger: %v", err)
	}
}

// countingStore counts the users each RecordConnections writes.
type countingStore struct {
	scheduler.ConnectionStore
	mu     sync.Mutex
	writes [][]string
	fail   bool
}

func (c *countingStore) RecordConnections(ctx context.Context, seen map[string]time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail {
		return commserver.ErrStorageUnavailable
	}
	var users []string
	for u := range seen {
		users = append(users, u)
	}
	slices.Sort(users)
	c.writes = append(c.writes, users)
	return c.ConnectionStore.RecordConnections(ctx, seen)
}

// A connect storm is one write per user per debounce period, in batches.
func TestConnectionRecorderDebounces(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(at("2025-01-15T00:00:00Z"))
	st := &countingStore{ConnectionStore: w.db}
	rec := scheduler.NewConnectionRecorder(st, scheduler.RecorderOptions{Clock: clock}, quiet())
	for range 1000 {
		rec.Seen(oid(1))
	}
	rec.Seen(oid(2))
	rec.Flush(ctx)
	clock.Advance(10 * time.Minute)
	rec.Seen(oid(1)) // within the hour: not written again
	rec.Flush(ctx)
	st.fail = true
	clock.Advance(time.Hour)
	rec.Seen(oid(1))
	rec.Flush(ctx) // the store is down: kept
	st.fail = false
	rec.Flush(ctx)
	if want := [][]string{{oid(1), oid(2)}, {oid(1)}}; !slices.EqualFunc(st.writes, want, slices.Equal) {
		t.Fatalf("writes %v, want %v", st.writes, want)
	}
	got, err := w.db.ConnectedSince(ctx, at("2025-01-15T01:00:00Z"))
	if err != nil || !slices.Equal(got, []string{oid(1)}) {
		t.Fatalf("connected since 01:00: %v, %v", got, err)
	}
}

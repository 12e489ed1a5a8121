package scheduler_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/notify"
	"github.com/fitmate/commserver/scheduler"
	"github.com/fitmate/commserver/sms"
	twiliomock "github.com/fitmate/commserver/test/twilio-mock"
	"github.com/jonboulle/clockwork"
)

const (
	reminderTitle = "운동 시간이에요! ⏰"
	reminder      = scheduler.JobDailyWorkoutReminder
)

// reminderCast: seven active users (four of them text-able), one inactive.
type reminderCast struct {
	active  []string
	phones  map[string]string // user -> E.164 of those who get a text
	idle    string
	connect time.Time
}

func newReminderWorld(t *testing.T, now time.Time) (*world, reminderCast) {
	c := reminderCast{phones: map[string]string{}, idle: oid(99), connect: now.Add(-24 * time.Hour)}
	users := []any{
		user(oid(1), "김철수", "010-1000-0001", true),
		user(oid(2), "이영희", "010-1000-0002", true),
		user(oid(3), "", "010-1000-0003", true), // no name: greeted as 회원
		user(oid(4), "박민수", "", true),           // opted in without a number: no text
		user(oid(5), "최지우", "010-1000-0005", true),
		user(oid(6), "정우성", "010-1000-0006", false), // not opted in
		user(oid(99), "휴면", "010-1000-0099", true),  // not active
	}
	// oid(7) connected but has no users document: in-app only.
	for i := 1; i <= 7; i++ {
		c.active = append(c.active, oid(i))
	}
	for _, i := range []string{"1", "2", "3", "5"} {
		c.phones[oid(int(i[0]-'0'))] = "+82101000000" + i
	}
	w := newWorld(t, users...)
	w.connected(c.connect, c.active...)
	w.connected(now.Add(-8*24*time.Hour), c.idle)
	return w, c
}

// check asserts every active user has exactly one reminder (stored and
// pushed once), each text-able one exactly one text, and nobody else anything.
func (c reminderCast) check(t *testing.T, w *world, tw *twiliomock.Fake) {
	t.Helper()
	for _, u := range c.active {
		if got := len(w.ofType(u, notify.TypeWorkoutReminder)); got != 1 {
			t.Errorf("user %s has %d reminders, want 1", u, got)
		}
		if got := w.pub.pushes(u, reminderTitle); got != 1 {
			t.Errorf("user %s was pushed %d reminders, want 1", u, got)
		}
	}
	if got := len(w.ofType(c.idle, notify.TypeWorkoutReminder)); got != 0 {
		t.Errorf("the inactive user has %d reminders", got)
	}
	if tw == nil {
		return
	}
	sent := texts(tw)
	for _, phone := range c.phones {
		if sent[phone] != 1 {
			t.Errorf("%s got %d texts, want 1", phone, sent[phone])
		}
	}
	if len(sent) != len(c.phones) {
		t.Errorf("texts went to %v, want only %v", sent, c.phones)
	}
}

// Three instances on the real Redis fire the same 09:00 KST run at once (a
// shared fake clock), while a manual trigger races them on each: one run
// serves everyone, once. Then a fourth instance whose clock is behind fires
// after that run released its lock (gocron #841): it finds the slot done.
func TestReminderOnceAcrossThreeInstancesAndManualTriggers(t *testing.T) {
	start := at("2025-01-14T23:59:50Z") // 08:59:50 KST
	w, cast := newReminderWorld(t, start)
	rdb, prefix := testRedis(t)
	tw := twiliomock.StartFake(t)
	clock := clockwork.NewFakeClockAt(start)
	only := func(o *scheduler.Options) {
		o.Clock = clock
		o.Schedules = map[string]string{scheduler.JobWeeklyReport: "off", scheduler.JobGoalCheck: "off", scheduler.JobCleanup: "off"}
	}
	var pods []*instance
	for _, name := range []string{"pod-a", "pod-b", "pod-c"} {
		pods = append(pods, w.instance(name, setup{locker: scheduler.NewRedisLocker(rdb, prefix), sms: w.texter(tw.URL), options: only}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	for _, p := range pods {
		running.Add(1)
		go func() { defer running.Done(); _ = p.Run(ctx) }()
	}
	defer func() { cancel(); running.Wait() }()
	for _, p := range pods {
		eventually(t, 5*time.Second, "gocron schedules 09:00 KST", func() bool {
			st := p.Status(ctx)[0]
			return st.NextRun != nil && time.Time(*st.NextRun).Equal(at("2025-01-15T00:00:00Z"))
		})
	}

	clock.Advance(10 * time.Second) // 09:00:00 KST: all three fire
	var triggers sync.WaitGroup
	var accepted, conflicts int
	var mu sync.Mutex
	for _, p := range pods {
		triggers.Add(1)
		go func() {
			defer triggers.Done()
			_, err := p.Trigger(ctx, reminder)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				accepted++
			case errors.Is(err, commserver.ErrConflict):
				conflicts++
			default:
				t.Errorf("trigger: %v", err)
			}
		}()
	}
	triggers.Wait()
	waitIdle(t, w, pods...)
	cast.check(t, w, tw)

	var ok, skipped float64
	for _, p := range pods {
		ok += p.count(t, "commserver_job_runs_total", map[string]string{"job": reminder, "result": scheduler.StateOK})
		for _, r := range []string{"skipped_locked", "skipped_running", "skipped_done"} {
			skipped += p.count(t, "commserver_job_runs_total", map[string]string{"job": reminder, "result": r})
		}
	}
	if ok < 1 || ok+skipped+float64(conflicts) != 3+float64(accepted+conflicts) {
		t.Errorf("runs ok %v, skipped %v, triggers accepted %d, refused %d: every firing and trigger is accounted for",
			ok, skipped, accepted, conflicts)
	}

	// A pod whose clock is 2s behind fires once the run is over and its lock free.
	late := clockwork.NewFakeClockAt(start.Add(-2 * time.Second))
	pod := w.instance("pod-late", setup{locker: scheduler.NewRedisLocker(rdb, prefix), sms: w.texter(tw.URL),
		options: func(o *scheduler.Options) { only(o); o.Clock = late }})
	running.Add(1)
	go func() { defer running.Done(); _ = pod.Run(ctx) }()
	eventually(t, 5*time.Second, "the late pod schedules 09:00", func() bool { return pod.Status(ctx)[0].NextRun != nil })
	late.Advance(12 * time.Second)
	eventually(t, 5*time.Second, "the late pod's firing", func() bool {
		return pod.count(t, "commserver_job_runs_total", map[string]string{"job": reminder, "result": "skipped_done"}) == 1
	})
	cast.check(t, w, tw)
}

// waitIdle waits until no instance runs the reminder and the ledger says its run finished.
func waitIdle(t *testing.T, w *world, pods ...*instance) {
	t.Helper()
	eventually(t, 30*time.Second, "the run finishes", func() bool {
		for _, p := range pods {
			for _, st := range p.Status(context.Background()) {
				if st.Running {
					return false
				}
			}
		}
		r, err := w.db.LastRun(context.Background(), reminder)
		return err == nil && r.State == scheduler.StateOK
	})
}

// With no lock at all (every instance runs at once), the ledger alone
// keeps each user to one reminder and one text.
func TestLedgerAloneServesOnceWithoutLock(t *testing.T) {
	now := at("2025-01-15T00:00:01Z")
	w, cast := newReminderWorld(t, now)
	tw := twiliomock.StartFake(t)
	var pods []*instance
	for _, name := range []string{"pod-a", "pod-b", "pod-c"} {
		pods = append(pods, w.instance(name, setup{locker: noLock{}, sms: w.texter(tw.URL),
			options: func(o *scheduler.Options) { o.Clock = clockwork.NewFakeClockAt(now); o.BatchSize = 2 }}))
	}
	for round := range 2 {
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for _, p := range pods {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				if _, err := p.RunNow(context.Background(), reminder); err != nil {
					t.Errorf("round %d: %v", round, err)
				}
			}()
		}
		close(gate)
		wg.Wait()
	}
	cast.check(t, w, tw)
	var sent float64
	for _, p := range pods {
		sent += p.count(t, "commserver_job_items_total", map[string]string{"job": reminder, "outcome": "sent"})
	}
	if sent != float64(len(cast.active)) {
		t.Errorf("instances report %v sent, want %d", sent, len(cast.active))
	}
}

// hookNotifier calls after once each notification is created (or found).
type hookNotifier struct {
	scheduler.Notifier
	after func(userID string, created bool)
}

func (h hookNotifier) CreateOnce(ctx context.Context, id string, in notify.CreateInput) (notify.Notification, bool, error) {
	n, c, err := h.Notifier.CreateOnce(ctx, id, in)
	if h.after != nil {
		h.after(in.UserID, c)
	}
	return n, c, err
}

// A run asked to stop after half the users (SIGTERM) stops at a recipient
// boundary; the next run serves the rest, nobody twice.
func TestStoppedHalfWayThenRunAgain(t *testing.T) {
	now := at("2025-01-15T00:00:01Z")
	w, cast := newReminderWorld(t, now)
	tw := twiliomock.StartFake(t)
	ctx, stop := context.WithCancel(context.Background())
	n := 0
	notifier := hookNotifier{Notifier: w.notifier(), after: func(string, bool) {
		if n++; n == 4 {
			stop()
		}
	}}
	opts := func(o *scheduler.Options) { o.Clock = clockwork.NewFakeClockAt(now) }
	pod := w.instance("pod-a", setup{notify: notifier, sms: w.texter(tw.URL), options: opts})
	r, err := pod.RunNow(ctx, reminder)
	if !errors.Is(err, scheduler.ErrStopped) || r.State != scheduler.StateInterrupted || r.Counts.Sent != 4 {
		t.Fatalf("first run: %+v, %v; want interrupted after 4", r, err)
	}
	if got, _ := w.db.RunOf(context.Background(), reminder, at("2025-01-15T00:00:00Z")); got.State != scheduler.StateInterrupted {
		t.Fatalf("ledger says %+v", got)
	}
	// The next run: on another instance, after the first one's end.
	other := w.instance("pod-b", setup{sms: w.texter(tw.URL), options: opts})
	r, err = other.RunNow(context.Background(), reminder)
	if err != nil || r.State != scheduler.StateOK || r.Counts.Sent != 3 || r.Counts.Skipped != 4 {
		t.Fatalf("second run: %+v, %v; want 3 sent, 4 skipped", r, err)
	}
	if got, _ := w.db.RunOf(context.Background(), reminder, at("2025-01-15T00:00:00Z")); got.State != scheduler.StateOK || got.Attempts != 2 {
		t.Fatalf("ledger says %+v; want ok after 2 attempts", got)
	}
	cast.check(t, w, tw)
}

// A process killed between a user's notification and its record (here: a
// panic right after the insert), and one killed while sending a text: the
// next run finishes with no second notification and no second text.
func TestKilledMidRecipientThenRunAgain(t *testing.T) {
	now := at("2025-01-15T00:00:01Z")
	w, cast := newReminderWorld(t, now)
	tw := twiliomock.StartFake(t)
	opts := func(o *scheduler.Options) { o.Clock = clockwork.NewFakeClockAt(now) }

	notifier := hookNotifier{Notifier: w.notifier(), after: func(u string, created bool) {
		if u == oid(2) && created {
			panic("killed after the insert")
		}
	}}
	pod := w.instance("pod-a", setup{notify: notifier, sms: w.texter(tw.URL), options: opts})
	r, err := pod.RunNow(context.Background(), reminder)
	if err == nil || r.State != scheduler.StatePanic {
		t.Fatalf("first run: %+v, %v; want a recovered panic", r, err)
	}
	if got := pod.count(t, "commserver_job_runs_total", map[string]string{"job": reminder, "result": scheduler.StatePanic}); got != 1 {
		t.Errorf("panics counted: %v", got)
	}

	dying := dyingTexter{Texter: w.texter(tw.URL), victim: "010-1000-0005"}
	pod = w.instance("pod-b", setup{sms: dying, options: opts})
	// The second run finds oid(2) notified (its record was never written) and dies on oid(5)'s text.
	if r, err = pod.RunNow(context.Background(), reminder); err == nil || r.Counts.Details["alreadyNotified"] != 1 {
		t.Fatalf("second run: %+v, %v; want oid(2) found notified, then the text's panic", r, err)
	}

	pod = w.instance("pod-c", setup{sms: w.texter(tw.URL), options: opts})
	r, err = pod.RunNow(context.Background(), reminder)
	if err != nil || r.State != scheduler.StateOK {
		t.Fatalf("third run: %+v, %v", r, err)
	}
	if r.Counts.Details["alreadyNotified"] != 1 || r.Counts.Details["textsSkipped"] != 1 {
		t.Errorf("third run counts %+v: oid(5) was notified and its text claimed by the run that died", r.Counts)
	}
	// oid(5)'s text was claimed by the process that died sending it: never sent twice, here not at all.
	delete(cast.phones, oid(5))
	cast.check(t, w, tw)
}

// dyingTexter dies (panics) while sending to victim, after its claim.
type dyingTexter struct {
	scheduler.Texter
	victim string
}

func (d dyingTexter) SendWorkoutReminder(ctx context.Context, phone, name, workout string) (sms.Result, error) {
	if phone == d.victim {
		panic("killed while sending a text")
	}
	return d.Texter.SendWorkoutReminder(ctx, phone, name, workout)
}

// Package scheduler runs the server's scheduled jobs on gocron, on Korea's
// clock by default, once per cluster:
//
//   - daily-workout-reminder (09:00): every active user gets the in-app
//     workout reminder, and a text when they opted in;
//   - weekly-report (Sundays 18:00): every user who completed a workout in
//     the past 7 days gets a report computed from those workouts;
//   - goal-check (hourly): a goal reached in its week or month gets one
//     goal-achieved notification per period;
//   - cleanup (00:00): expired and old read notifications are deleted, old
//     chat messages moved to chatmessages_archive.
//
// Once per cluster rests on two things. A lock per job (Redis, or in memory
// for a single instance) lets one instance run a job at a time; a lock
// alone is not enough (gocron #841: a fast job runs again on an instance
// whose clock is behind; #799: a lock expires under a slow run). So under
// it, every run is named by its slot (the schedule's firing) and every
// recipient's due by a unique key (job, period, recipient) in a ledger of
// ours: a recipient already recorded is skipped, the notification's _id is
// derived from the key (two attempts cannot both insert it), and a text is
// claimed under its own unique key before it is sent (never twice). Redis
// down at a firing skips the run everywhere; a sweep every minute catches
// up a slot whose run did not finish (skipped, killed, interrupted) once the
// lock can be taken again.
//
// The jobs are small functions over interfaces this package declares
// (Store, Notifier, Texter), implemented by packages store, notify and sms.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/go-co-op/gocron/v2"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"
)

// Job names: the REST routes, the logs, the metrics and the ledger use them.
const (
	JobDailyWorkoutReminder = "daily-workout-reminder"
	JobWeeklyReport         = "weekly-report"
	JobGoalCheck            = "goal-check"
	JobCleanup              = "cleanup"
)

// JobInfo names a job, its default schedule (standard five-field cron, in
// the scheduler's time zone) and what it does.
type JobInfo struct{ Name, Schedule, Description string }

// Jobs lists the jobs in the order GET /admin/jobs shows them.
var Jobs = []JobInfo{
	{JobDailyWorkoutReminder, "0 9 * * *", "in-app workout reminder to every active user, and a text to those who opted in"},
	{JobWeeklyReport, "0 18 * * 0", "weekly report from the past 7 days' workout_completed notifications"},
	{JobGoalCheck, "0 * * * *", "goal-achieved notification once per goal and period"},
	{JobCleanup, "0 0 * * *", "delete expired and old read notifications; archive old chat messages"},
}

// Off is the schedule that disables a job's firing (a manual run still works).
const Off = "off"

// Active-user sources (Options.ActiveSources).
const (
	SourceConnections = "connections" // connected to this server (the lastconnections collection)
	SourceWorkouts    = "workouts"    // a workout_completed notification
	SourceUsers       = "users"       // lastActiveAt in the main backend's users document
)

// Options configure the scheduler. Zero values take the defaults, but for
// CatchUpWindow.
type Options struct {
	// Enabled false keeps the scheduler from firing and from manual runs
	// on this instance (SCHEDULER_ENABLED); it still lists the jobs.
	Enabled bool
	// Location is the schedules' and the calendar's time zone (Asia/Seoul).
	Location *time.Location
	// Schedules re-times jobs by name: a cron expression or Off. Jobs not
	// named keep their default.
	Schedules map[string]string
	// ActiveWindow is how recent an active user's activity is (7 days).
	ActiveWindow time.Duration
	// ActiveSources are what counts as activity (all three).
	ActiveSources []string
	// BatchSize is how many recipients (or messages) a batch holds (100).
	BatchSize int
	// CatchUpWindow is how late a missed or unfinished slot is still run
	// (SCHEDULER_CATCHUP_WINDOW, 6h); zero disables catch-up.
	CatchUpWindow time.Duration
	// LockTTL is the cluster lock's lifetime, extended every third of it
	// while a run goes on (30s): a killed run's lock frees within it.
	LockTTL time.Duration
	// ReadNotificationRetention: read notifications older are deleted (30 days).
	ReadNotificationRetention time.Duration
	// ChatArchiveAfter: chat messages older are archived (90 days).
	ChatArchiveAfter time.Duration
	// Instance names this process in run records (host:pid).
	Instance string
	// Clock drives gocron, the sweep and the jobs' notion of now (tests pass a fake one).
	Clock clockwork.Clock
	// SweepInterval is how often catch-up looks for unfinished slots (1m).
	SweepInterval time.Duration
	// StopTimeout bounds how long Run waits for a running job to reach a
	// recipient boundary once asked to stop (20s).
	StopTimeout time.Duration
}

// Deps are what the jobs work with.
type Deps struct {
	Store   Store
	Notify  Notifier
	SMS     Texter // nil: no texts
	Locker  Locker
	Metrics prometheus.Registerer // nil: unregistered
	Log     *slog.Logger
	// Activity, when set, is flushed before each run so that the run sees
	// the connections this instance noted but has not written yet.
	Activity interface{ Flush(context.Context) }
}

// Scheduler runs the jobs. Run owns its goroutines; Trigger, RunNow and
// Status are safe for concurrent use.
type Scheduler struct {
	d     Deps
	o     Options
	clock clockwork.Clock
	log   *slog.Logger
	m     *metrics
	jobs  map[string]*job
	order []*job

	cron     gocron.Scheduler
	stopping atomic.Bool // set once Run stops: manual runs are refused
	runsMu   sync.Mutex  // orders Trigger's runs.Add before Run's runs.Wait
	runs     sync.WaitGroup
	base     context.Context // canceled when Run stops: manual runs stop at a recipient boundary
	stop     context.CancelFunc
}

// job is one job's definition and its state on this instance.
type job struct {
	name, spec, description string
	enabled                 bool          // fires on its schedule
	sched                   cron.Schedule // the configured schedule, or the default when off: it names the slots
	fn                      func(ctx context.Context, r *runState) error

	local sync.Mutex // held while the job runs on this instance

	mu       sync.Mutex
	gj       gocron.Job
	current  *runState // the run in progress here
	last     *Run      // the last run here
	lastSkip *Skip
}

// Skip is a firing this instance did not run, and why.
type Skip struct {
	At      commserver.JSTime `json:"at"`
	Trigger string            `json:"trigger"`
	Reason  string            `json:"reason"`
}

// Triggers.
const (
	TriggerSchedule = "schedule"
	TriggerManual   = "manual"
	TriggerCatchUp  = "catch-up"
)

// New validates the options and returns a scheduler; Run starts it.
func New(d Deps, o Options) (*Scheduler, error) {
	if o.Location == nil {
		loc, err := time.LoadLocation("Asia/Seoul")
		if err != nil {
			return nil, fmt.Errorf("scheduler: %w", err)
		}
		o.Location = loc
	}
	if o.ActiveWindow <= 0 {
		o.ActiveWindow = 7 * 24 * time.Hour
	}
	if o.ActiveSources == nil {
		o.ActiveSources = []string{SourceConnections, SourceWorkouts, SourceUsers}
	}
	for _, src := range o.ActiveSources {
		if !slices.Contains([]string{SourceConnections, SourceWorkouts, SourceUsers}, src) {
			return nil, fmt.Errorf("scheduler: unknown active-user source %q", src)
		}
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	if o.LockTTL <= 0 {
		o.LockTTL = 30 * time.Second
	}
	if o.ReadNotificationRetention <= 0 {
		o.ReadNotificationRetention = 30 * 24 * time.Hour
	}
	if o.ChatArchiveAfter <= 0 {
		o.ChatArchiveAfter = 90 * 24 * time.Hour
	}
	if o.Instance == "" {
		host, _ := os.Hostname()
		o.Instance = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = time.Minute
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 20 * time.Second
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Metrics == nil {
		d.Metrics = prometheus.NewRegistry()
	}
	if d.Store == nil || d.Notify == nil || d.Locker == nil {
		return nil, errors.New("scheduler: Store, Notify and Locker are required")
	}
	s := &Scheduler{d: d, o: o, clock: o.Clock, log: d.Log.With("component", "scheduler"), m: newMetrics(d.Metrics),
		jobs: map[string]*job{}}
	fns := map[string]func(context.Context, *runState) error{
		JobDailyWorkoutReminder: s.dailyWorkoutReminder,
		JobWeeklyReport:         s.weeklyReport,
		JobGoalCheck:            s.goalCheck,
		JobCleanup:              s.cleanup,
	}
	for name := range o.Schedules {
		if fns[name] == nil {
			return nil, fmt.Errorf("scheduler: no job named %q", name)
		}
	}
	var problems []string
	for _, def := range Jobs {
		j := &job{name: def.Name, spec: def.Schedule, description: def.Description, enabled: true, fn: fns[def.Name]}
		if v, ok := o.Schedules[def.Name]; ok && strings.TrimSpace(v) != "" {
			j.spec = strings.TrimSpace(v)
		}
		periods := j.spec
		if strings.EqualFold(j.spec, Off) {
			j.spec, j.enabled, periods = Off, false, def.Schedule
		}
		sched, err := parseSchedule(periods, o.Location)
		if err != nil {
			problems = append(problems, def.Name+": "+err.Error())
			continue
		}
		j.sched = sched
		s.jobs[j.name] = j
		s.order = append(s.order, j)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("scheduler: %s", strings.Join(problems, "; "))
	}
	s.base, s.stop = context.WithCancel(context.Background())
	return s, nil
}

// Run fires the jobs on their schedules and catches up unfinished slots
// until ctx is done. Then it stops: no new run starts, a running job stops
// at its next recipient boundary (what is left goes to the next run), and
// Run returns once every run it started has ended or StopTimeout passed.
func (s *Scheduler) Run(ctx context.Context) error {
	if !s.o.Enabled {
		s.log.Info("scheduler disabled on this instance (SCHEDULER_ENABLED=false)")
		<-ctx.Done()
		return nil
	}
	c, err := gocron.NewScheduler(gocron.WithLocation(s.o.Location), gocron.WithClock(s.clock),
		gocron.WithStopTimeout(s.o.StopTimeout), gocron.WithLogger(gocronLogger{s.log}))
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	s.cron = c
	for _, j := range s.order {
		if !j.enabled {
			continue
		}
		gj, err := c.NewJob(gocron.CronJob(j.spec, false),
			gocron.NewTask(func(ctx context.Context) { _, _ = s.attempt(ctx, j, TriggerSchedule) }),
			gocron.WithName(j.name), gocron.WithContext(s.base),
			// A firing while the job still runs here waits for the next one.
			gocron.WithSingletonMode(gocron.LimitModeReschedule))
		if err != nil {
			_ = c.Shutdown()
			return fmt.Errorf("scheduler: %s: %w", j.name, err)
		}
		j.mu.Lock()
		j.gj = gj
		j.mu.Unlock()
	}
	c.Start()
	s.log.Info("scheduler started", "time_zone", s.o.Location.String(), "jobs", s.describe())

	s.sweepLoop(ctx)

	s.runsMu.Lock()
	s.stopping.Store(true)
	s.runsMu.Unlock()
	s.stop() // running jobs stop at their next recipient boundary
	done := make(chan struct{})
	go func() {
		if err := c.Shutdown(); err != nil {
			s.log.Warn("scheduler: gocron shutdown", "err", err)
		}
		s.runs.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(s.o.StopTimeout):
		s.log.Warn("scheduler: a job did not stop in time; the next run finishes it", "timeout", s.o.StopTimeout)
	}
	s.log.Info("scheduler stopped")
	return nil
}

func (s *Scheduler) describe() []string {
	var out []string
	for _, j := range s.order {
		out = append(out, j.name+"="+j.spec)
	}
	return out
}

// sweepLoop catches up at start and every SweepInterval until ctx is done.
func (s *Scheduler) sweepLoop(ctx context.Context) {
	if s.o.CatchUpWindow <= 0 {
		<-ctx.Done()
		return
	}
	t := s.clock.NewTicker(s.o.SweepInterval)
	defer t.Stop()
	for {
		s.sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
		}
	}
}

// maxAttempts is how many failed attempts at a slot catch-up makes.
const maxAttempts = 3

// sweep runs every job whose latest slot, at least one sweep interval old
// and within the catch-up window, has no finished run: it was skipped
// (Redis down, the store down), killed, interrupted, or failed fewer than
// maxAttempts times. A run in progress elsewhere holds the lock: the
// attempt is skipped.
func (s *Scheduler) sweep(ctx context.Context) {
	now := s.clock.Now()
	for _, j := range s.order {
		if !j.enabled || ctx.Err() != nil {
			continue
		}
		slot := latestSlot(j.sched, now)
		if age := now.Sub(slot); slot.IsZero() || age < s.o.SweepInterval || age > s.o.CatchUpWindow {
			continue
		}
		r, err := s.d.Store.RunOf(ctx, j.name, slot)
		switch {
		case errors.Is(err, commserver.ErrNotFound):
		case err != nil:
			s.log.Warn("catch-up: reading the ledger", "job", j.name, "err", err)
			continue
		case r.State == StateOK, (r.State == StateFailed || r.State == StatePanic) && r.Attempts >= maxAttempts:
			continue
		}
		_, _ = s.attempt(ctx, j, TriggerCatchUp)
	}
}

// JobStatus is a job as GET /admin/jobs shows it.
type JobStatus struct {
	Name        string             `json:"name"`
	Description string             `json:"description"`
	Schedule    string             `json:"schedule"` // cron expression or "off"
	TimeZone    string             `json:"timeZone"`
	Enabled     bool               `json:"enabled"`
	Running     bool               `json:"running"`
	NextRun     *commserver.JSTime `json:"nextRun"`
	LastRun     *Run               `json:"lastRun"`     // across the cluster (the ledger), else this instance's
	LastSkipped *Skip              `json:"lastSkipped"` // on this instance
}

// Status lists the jobs: schedule, next run, and the last run recorded by
// any instance (this instance's when the ledger does not answer).
func (s *Scheduler) Status(ctx context.Context) []JobStatus {
	out := make([]JobStatus, 0, len(s.order))
	for _, j := range s.order {
		st := JobStatus{Name: j.name, Description: j.description, Schedule: j.spec, TimeZone: s.o.Location.String(),
			Enabled: j.enabled && s.o.Enabled}
		j.mu.Lock()
		gj := j.gj
		j.mu.Unlock()
		if st.Enabled {
			next := j.sched.Next(s.clock.Now())
			if gj != nil {
				if t, err := gj.NextRun(); err == nil && !t.IsZero() {
					next = t
				}
			}
			n := commserver.JSTime(next)
			st.NextRun = &n
		}
		j.mu.Lock()
		if j.current != nil {
			st.Running = true
			r := j.current.snapshot()
			st.LastRun = &r
		} else if j.last != nil {
			r := *j.last
			st.LastRun = &r
		}
		st.LastSkipped = j.lastSkip
		j.mu.Unlock()
		if !st.Running {
			if r, err := s.d.Store.LastRun(ctx, j.name); err == nil {
				st.LastRun = &r
				st.Running = r.State == StateRunning
			}
		}
		out = append(out, st)
	}
	return out
}

// Names lists the jobs' names, sorted.
func (s *Scheduler) Names() []string {
	var out []string
	for n := range s.jobs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Trigger starts a run of the job now, under the same rules as a scheduled
// one (one at a time in the cluster; recipients served before are skipped),
// and returns its run id. Errors: commserver.ErrNotFound for an unknown job;
// commserver.ErrConflict while the job runs here or elsewhere;
// commserver.ErrUnavailable when the scheduler is off or stopping, or the
// lock service does not answer.
func (s *Scheduler) Trigger(ctx context.Context, name string) (string, error) {
	j, lease, err := s.acquire(ctx, name)
	if err != nil {
		return "", err
	}
	s.runsMu.Lock()
	if s.stopping.Load() {
		s.runsMu.Unlock()
		_ = lease.Release(context.WithoutCancel(ctx))
		j.local.Unlock()
		return "", commserver.Errorf(commserver.CodeUnavailable, "the scheduler is stopping")
	}
	s.runs.Add(1)
	s.runsMu.Unlock()
	runID := newRunID()
	go func() {
		defer s.runs.Done()
		defer j.local.Unlock()
		_, _ = s.runHeld(s.base, j, TriggerManual, runID, lease)
	}()
	return runID, nil
}

// RunNow runs the job now and waits for the run: Trigger, synchronously.
// Canceling ctx stops the run at its next recipient boundary.
func (s *Scheduler) RunNow(ctx context.Context, name string) (Run, error) {
	j, lease, err := s.acquire(ctx, name)
	if err != nil {
		return Run{}, err
	}
	defer j.local.Unlock()
	return s.runHeld(ctx, j, TriggerManual, newRunID(), lease)
}

// acquire takes the job's local and cluster locks for a manual run.
func (s *Scheduler) acquire(ctx context.Context, name string) (*job, Lease, error) {
	j := s.jobs[name]
	if j == nil {
		return nil, nil, commserver.Errorf(commserver.CodeNotFound, "no job %q: the jobs are %s", name, strings.Join(s.Names(), ", "))
	}
	if !s.o.Enabled {
		return nil, nil, commserver.Errorf(commserver.CodeUnavailable, "the scheduler is disabled on this instance (SCHEDULER_ENABLED=false)")
	}
	if s.stopping.Load() {
		return nil, nil, commserver.Errorf(commserver.CodeUnavailable, "the scheduler is stopping")
	}
	if !j.local.TryLock() {
		return nil, nil, commserver.Errorf(commserver.CodeConflict, "%s is running on this instance", name)
	}
	lease, err := s.d.Locker.TryLock(ctx, lockKey(j.name), s.o.LockTTL)
	if err != nil {
		j.local.Unlock()
		if errors.Is(err, ErrLocked) {
			return nil, nil, commserver.Errorf(commserver.CodeConflict, "%s is running on another instance", name)
		}
		return nil, nil, &commserver.Error{Code: commserver.CodeUnavailable, Err: err,
			Message: "the job lock (Redis) is unavailable: nothing runs until it answers"}
	}
	return j, lease, nil
}

func lockKey(job string) string { return "job:" + job }

func newRunID() string { return newToken()[:20] }

// gocronLogger passes gocron's messages to slog, its chatter at debug.
type gocronLogger struct{ log *slog.Logger }

func (l gocronLogger) Debug(msg string, args ...any) { l.log.Debug(msg, args...) }
func (l gocronLogger) Info(msg string, args ...any)  { l.log.Debug(msg, args...) }
func (l gocronLogger) Warn(msg string, args ...any)  { l.log.Warn(msg, args...) }
func (l gocronLogger) Error(msg string, args ...any) { l.log.Error(msg, args...) }

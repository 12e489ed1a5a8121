package scheduler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"sync"
	"time"

	commserver "github.com/fitmate/commserver"
)

// ErrStopped ends a run that was asked to stop (SIGTERM) at a recipient
// boundary: the run is recorded interrupted and the next run finishes it.
var ErrStopped = errors.New("scheduler: stopped before the end; the next run finishes it")

var errStopped = ErrStopped

// Skip reasons.
const (
	skipLocked      = "skipped_locked"      // another run holds the cluster lock
	skipUnavailable = "skipped_unavailable" // the lock service (Redis) did not answer
	skipRunning     = "skipped_running"     // the job runs on this instance
	skipDone        = "skipped_done"        // the slot's run finished before
)

// runState is one attempt in progress: what the job function needs to know
// about its run, and its counts (read by Status while it runs).
type runState struct {
	id     string
	job    string
	slot   time.Time
	period string
	now    time.Time // the run's clock reading at its start
	run    Run

	mu     sync.Mutex
	counts Counts
}

func (r *runState) add(sent, skipped, failed int64) {
	r.mu.Lock()
	r.counts.Sent += sent
	r.counts.Skipped += skipped
	r.counts.Failed += failed
	r.mu.Unlock()
}

func (r *runState) sent()    { r.add(1, 0, 0) }
func (r *runState) skipped() { r.add(0, 1, 0) }
func (r *runState) failed()  { r.add(0, 0, 1) }

// detail adds n to a job-specific count.
func (r *runState) detail(name string, n int64) {
	if n == 0 {
		return
	}
	r.mu.Lock()
	if r.counts.Details == nil {
		r.counts.Details = map[string]int64{}
	}
	r.counts.Details[name] += n
	r.mu.Unlock()
}

func (r *runState) snapshot() Run {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.run
	out.Counts = r.counts
	out.Counts.Details = maps.Clone(r.counts.Details)
	return out
}

// attempt is a scheduled or catch-up firing: it takes the job's local and
// cluster locks or records why it could not, then runs.
func (s *Scheduler) attempt(ctx context.Context, j *job, trigger string) (Run, error) {
	if !j.local.TryLock() {
		s.skip(j, trigger, skipRunning, nil)
		return Run{}, ErrLocked
	}
	defer j.local.Unlock()
	lease, err := s.d.Locker.TryLock(ctx, lockKey(j.name), s.o.LockTTL)
	if err != nil {
		reason := skipUnavailable
		if errors.Is(err, ErrLocked) {
			reason = skipLocked
		}
		s.skip(j, trigger, reason, err)
		return Run{}, err
	}
	return s.runHeld(ctx, j, trigger, newRunID(), lease)
}

// skip counts and shows a firing that did not run.
func (s *Scheduler) skip(j *job, trigger, reason string, err error) {
	s.m.runs.WithLabelValues(j.name, trigger, reason).Inc()
	j.mu.Lock()
	j.lastSkip = &Skip{At: commserver.JSTime(s.clock.Now()), Trigger: trigger, Reason: reason}
	j.mu.Unlock()
	switch {
	case reason == skipUnavailable && trigger == TriggerSchedule:
		s.log.Warn("job skipped: the lock service is unavailable; it is caught up when it returns", "job", j.name, "err", err)
	case trigger == TriggerCatchUp:
		s.log.Debug("catch-up skipped", "job", j.name, "reason", reason, "err", err)
	default:
		s.log.Info("job skipped", "job", j.name, "trigger", trigger, "reason", reason)
	}
}

// runHeld runs the job for its current slot while holding the cluster lock
// (lease), which it extends and finally releases. ctx done asks the job to
// stop at its next recipient boundary.
func (s *Scheduler) runHeld(ctx context.Context, j *job, trigger, runID string, lease Lease) (Run, error) {
	bg := context.WithoutCancel(ctx)
	defer func() {
		rctx, cancel := context.WithTimeout(bg, redisCallTimeout)
		defer cancel()
		if err := lease.Release(rctx); err != nil {
			s.log.Warn("releasing the job lock; it expires by itself", "job", j.name, "err", err)
		}
	}()
	stopKeepAlive := s.keepAlive(bg, j, lease)
	defer stopKeepAlive()

	if s.d.Activity != nil {
		s.d.Activity.Flush(bg)
	}
	now := s.clock.Now()
	slot := latestSlot(j.sched, now.Add(slotTolerance))
	if slot.IsZero() {
		slot = now.Truncate(time.Minute)
	}
	if trigger != TriggerManual {
		// A firing after the slot's run finished (gocron #841: a fast job
		// and a clock behind) has nothing to do.
		if prev, err := s.d.Store.RunOf(bg, j.name, slot); err == nil && prev.State == StateOK {
			s.skip(j, trigger, skipDone, nil)
			return prev, nil
		}
	}
	r := &runState{id: runID, job: j.name, slot: slot, period: periodKey(slot, s.o.Location), now: now}
	r.run = Run{ID: runID, Job: j.name, Slot: commserver.JSTime(slot), Period: r.period, Trigger: trigger,
		Instance: s.o.Instance, State: StateRunning, StartedAt: commserver.JSTime(now)}
	if err := s.d.Store.BeginRun(bg, r.run); err != nil {
		s.m.runs.WithLabelValues(j.name, trigger, StateFailed).Inc()
		s.log.Error("job not started: the ledger is unavailable; it is caught up later", "job", j.name, "err", err)
		return r.run, err
	}
	j.mu.Lock()
	j.current = r
	j.mu.Unlock()
	s.m.running.WithLabelValues(j.name).Set(1)
	s.log.Info("job started", "job", j.name, "run_id", runID, "trigger", trigger, "period", r.period)

	err := s.call(ctx, j, r)

	end := s.clock.Now()
	out := r.snapshot()
	out.FinishedAt = ptr(commserver.JSTime(end))
	switch {
	case err == nil:
		out.State = StateOK
	case errors.Is(err, errStopped):
		out.State = StateInterrupted
	case errors.Is(err, errPanic):
		out.State = StatePanic
	default:
		out.State = StateFailed
	}
	if err != nil {
		out.Error = err.Error()
	}
	if werr := s.d.Store.EndRun(bg, out); werr != nil {
		s.log.Warn("recording the job's end", "job", j.name, "run_id", runID, "err", werr)
	}
	j.mu.Lock()
	j.current, j.last = nil, &out
	j.mu.Unlock()

	s.m.running.WithLabelValues(j.name).Set(0)
	s.m.runs.WithLabelValues(j.name, trigger, out.State).Inc()
	s.m.duration.WithLabelValues(j.name, out.State).Observe(end.Sub(now).Seconds())
	s.m.items.WithLabelValues(j.name, "sent").Add(float64(out.Counts.Sent))
	s.m.items.WithLabelValues(j.name, "skipped").Add(float64(out.Counts.Skipped))
	s.m.items.WithLabelValues(j.name, "failed").Add(float64(out.Counts.Failed))
	for k, v := range out.Counts.Details {
		s.m.items.WithLabelValues(j.name, k).Add(float64(v))
	}
	attrs := []any{"job", j.name, "run_id", runID, "result", out.State, "period", r.period, "took", end.Sub(now),
		"sent", out.Counts.Sent, "skipped", out.Counts.Skipped, "failed", out.Counts.Failed, "details", out.Counts.Details}
	switch out.State {
	case StateOK:
		s.m.lastSuccess.WithLabelValues(j.name).Set(float64(end.Unix()))
		s.log.Info("job finished", attrs...)
	case StateInterrupted:
		s.log.Warn("job interrupted; the next run finishes it", attrs...)
	default:
		s.log.Error("job failed", append(attrs, "err", err)...)
	}
	return out, err
}

// errPanic marks a job that panicked.
var errPanic = errors.New("panic")

// call runs the job's function, turning a panic into an error.
func (s *Scheduler) call(ctx context.Context, j *job, r *runState) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("job panicked", "job", j.name, "run_id", r.id, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: %v", errPanic, p)
		}
	}()
	return j.fn(ctx, r)
}

// keepAlive extends the lease every third of its lifetime until stopped. A
// failed extension is counted and logged once; the run goes on (the ledger
// keeps a second runner from sending twice).
func (s *Scheduler) keepAlive(ctx context.Context, j *job, lease Lease) (stop func()) {
	// Wall-clock time, whatever the scheduler's clock: the lock expires in Redis's time.
	t := time.NewTicker(s.o.LockTTL / 3)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			if err := lease.Extend(ctx, s.o.LockTTL); err != nil {
				s.m.lockLost.WithLabelValues(j.name).Inc()
				s.log.Warn("job lock lost; the run goes on, the ledger keeps it from sending twice", "job", j.name, "err", err)
				return
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func ptr[T any](v T) *T { return &v }

package scheduler

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/fitmate/commserver/goals"
	"github.com/fitmate/commserver/notify"
)

// workoutPage is how many workouts one read returns.
const workoutPage = 1000

// tally sums a user's workouts.
type tally struct {
	days     map[string]bool // calendar days (in the scheduler's time zone) with a workout
	workouts int
	calories float64
	minutes  float64
	timed    int // workouts with a duration
}

func (t *tally) add(w Workout, loc *time.Location) {
	if t.days == nil {
		t.days = map[string]bool{}
	}
	t.days[dayOf(w.At, loc)] = true
	t.workouts++
	if w.HasCalories {
		t.calories += w.Calories
	}
	if w.HasDuration {
		t.minutes += w.Duration
		t.timed++
	}
}

// report is the seed's weekly statistics, computed: distinct workout days,
// calories (rounded to a whole number), workouts, and the average duration
// of those with one (minutes, rounded).
func (t *tally) report() notify.WeeklyReport {
	avg := 0
	if t.timed > 0 {
		avg = int(math.Round(t.minutes / float64(t.timed)))
	}
	return notify.WeeklyReport{WorkoutDays: len(t.days), TotalCalories: int(math.Round(t.calories)),
		TotalWorkouts: t.workouts, AverageWorkoutTime: avg}
}

// progress is the tally measured by a goal's metric.
func (t *tally) progress(m goals.Metric) float64 {
	switch m {
	case goals.MetricWorkouts:
		return float64(t.workouts)
	case goals.MetricMinutes:
		return t.minutes
	case goals.MetricCalories:
		return t.calories
	case goals.MetricWorkoutDays:
		return float64(len(t.days))
	}
	return 0
}

// eachWorkout pages through the workouts created in [from, to) (of userIDs when not nil).
func (s *Scheduler) eachWorkout(ctx context.Context, from, to time.Time, userIDs []string, fn func(Workout)) error {
	after := ""
	for {
		ws, err := s.d.Store.Workouts(ctx, from, to, userIDs, after, workoutPage)
		if err != nil {
			return err
		}
		for _, w := range ws {
			fn(w)
		}
		if len(ws) < workoutPage {
			return nil
		}
		after = ws[len(ws)-1].ID
	}
}

// weeklyReport gives every user with at least one workout_completed
// notification in the 7 days before the slot the seed's weekly report,
// computed from those notifications. The window ends at the slot, not at
// the run's start, so a retry or a catch-up reports the same numbers.
func (s *Scheduler) weeklyReport(ctx context.Context, r *runState) error {
	work := context.WithoutCancel(ctx)
	loc := s.o.Location
	from := r.slot.AddDate(0, 0, -7)
	tallies := map[string]*tally{}
	err := s.eachWorkout(work, from, r.slot, nil, func(w Workout) {
		t := tallies[w.UserID]
		if t == nil {
			t = &tally{}
			tallies[w.UserID] = t
		}
		t.add(w, loc)
	})
	if err != nil {
		return fmt.Errorf("workouts: %w", err)
	}
	done, err := s.d.Store.Delivered(work, r.job, r.period)
	if err != nil {
		return fmt.Errorf("deliveries: %w", err)
	}
	users := make([]string, 0, len(tallies))
	for u := range tallies {
		users = append(users, u)
	}
	slices.Sort(users)
	r.detail("usersWithWorkouts", int64(len(users)))
	for _, u := range users {
		if ctx.Err() != nil {
			return errStopped
		}
		if done[u] {
			r.skipped()
			continue
		}
		s.deliver(work, r, due{period: r.period, recipient: u, userID: u, at: r.slot,
			input: notify.WeeklyReportInput(u, tallies[u].report())})
	}
	return nil
}

// goalCheck measures every goal over its current period (Monday-start weeks
// and calendar months in the scheduler's time zone) from the user's
// workout_completed notifications, and notifies a goal reached once per goal
// and period.
func (s *Scheduler) goalCheck(ctx context.Context, r *runState) error {
	work := context.WithoutCancel(ctx)
	loc := s.o.Location
	all, err := s.d.Store.AllGoals(work)
	if err != nil {
		return fmt.Errorf("goals: %w", err)
	}
	weekStart, week := weekOf(r.now, loc)
	monthStart, month := monthOf(r.now, loc)
	from := weekStart
	if monthStart.Before(from) {
		from = monthStart
	}
	doneWeek, err := s.d.Store.Delivered(work, r.job, week)
	if err != nil {
		return fmt.Errorf("deliveries: %w", err)
	}
	doneMonth, err := s.d.Store.Delivered(work, r.job, month)
	if err != nil {
		return fmt.Errorf("deliveries: %w", err)
	}
	byUser := map[string][]goals.Goal{}
	for _, g := range all {
		byUser[g.UserID] = append(byUser[g.UserID], g)
	}
	users := make([]string, 0, len(byUser))
	for u := range byUser {
		users = append(users, u)
	}
	slices.Sort(users)
	r.detail("goals", int64(len(all)))
	return batches(users, s.o.BatchSize, func(batch []string) error {
		weekly, monthly := map[string]*tally{}, map[string]*tally{}
		err := s.eachWorkout(work, from, r.now, batch, func(w Workout) {
			for _, p := range []struct {
				m     map[string]*tally
				start time.Time
			}{{weekly, weekStart}, {monthly, monthStart}} {
				if w.At.Before(p.start) {
					continue
				}
				t := p.m[w.UserID]
				if t == nil {
					t = &tally{}
					p.m[w.UserID] = t
				}
				t.add(w, loc)
			}
		})
		if err != nil {
			return fmt.Errorf("workouts: %w", err)
		}
		for _, u := range batch {
			for _, g := range byUser[u] {
				if ctx.Err() != nil {
					return errStopped
				}
				period, start, done, t := week, weekStart, doneWeek, weekly[u]
				if g.Period == goals.PeriodMonth {
					period, start, done, t = month, monthStart, doneMonth, monthly[u]
				}
				recipient := u + "/" + g.GoalID
				if done[recipient] {
					r.skipped()
					continue
				}
				if t == nil {
					t = &tally{}
				}
				progress := t.progress(g.Metric)
				if progress < g.Target {
					r.detail("notReached", 1)
					continue
				}
				in, err := notify.GoalAchievedInput(u, map[string]any{
					"goalId": g.GoalID, "goalName": g.Name, "metric": string(g.Metric), "target": g.Target,
					"progress": progress, "period": string(g.Period), "periodKey": period,
					"periodStart": start.UTC().Format(time.RFC3339),
				})
				if err != nil {
					r.failed()
					s.log.Warn("goal-check: goal cannot be notified", "user", u, "goal", g.GoalID, "err", err)
					continue
				}
				s.deliver(work, r, due{period: period, recipient: recipient, userID: u, at: start, input: in})
			}
		}
		return nil
	})
}

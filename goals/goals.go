// Package goals holds the fitness goals the main backend registers for its
// users (PUT /goals/:userId/:goalId) and the hourly goal-check job watches:
// a number of workouts, minutes, calories or workout days to reach in a week
// or a month. Progress is not stored here: the scheduler computes it from
// the user's workout_completed notifications.
//
// The service consumes a Store (implemented by package store over the goals
// collection, which is ours).
package goals

import (
	"context"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	commserver "github.com/fitmate/commserver"
)

// Metric is what a goal counts.
type Metric string

// The metrics.
const (
	MetricWorkouts    Metric = "workouts"    // workout_completed notifications
	MetricMinutes     Metric = "minutes"     // the sum of their data.duration
	MetricCalories    Metric = "calories"    // the sum of their data.calories
	MetricWorkoutDays Metric = "workoutDays" // distinct calendar days with one (in the scheduler's time zone)
)

// Metrics lists the metrics in the order error messages name them.
var Metrics = []Metric{MetricWorkouts, MetricMinutes, MetricCalories, MetricWorkoutDays}

// Period is the span a goal is reached in; it starts again at each period's start.
type Period string

// The periods. Weeks start on Monday and months on the 1st, at midnight in
// the scheduler's time zone (Asia/Seoul by default).
const (
	PeriodWeek  Period = "week"
	PeriodMonth Period = "month"
)

// Periods lists the periods.
var Periods = []Period{PeriodWeek, PeriodMonth}

// Limits of what may be registered.
const (
	MaxUserIDLength = 128
	MaxGoalIDLength = 64
	MaxNameLength   = 100 // the goal-achieved notification quotes it (notify's goalName limit)
	MaxTarget       = 1e9
	MaxGoalsPerUser = 100
)

// Goal is one user's goal.
type Goal struct {
	UserID    string            `json:"userId"`
	GoalID    string            `json:"goalId"`
	Name      string            `json:"name"`
	Metric    Metric            `json:"metric"`
	Target    float64           `json:"target"`
	Period    Period            `json:"period"`
	CreatedAt commserver.JSTime `json:"createdAt"`
	UpdatedAt commserver.JSTime `json:"updatedAt"`
}

// Input is what the main backend sends to register or replace a goal.
// Pointers tell a missing field from a zero one.
type Input struct {
	Name   *string  `json:"name"`
	Metric *string  `json:"metric"`
	Target *float64 `json:"target"`
	Period *string  `json:"period"`
}

// Store keeps goals. Every method returns commserver errors:
// ErrStorageUnavailable when the database did not answer in time,
// ErrNotFound for a goal the user does not have.
type Store interface {
	// PutGoal creates or replaces the goal (keyed by user and goal id),
	// keeping its CreatedAt when it existed; created says which.
	PutGoal(ctx context.Context, g Goal) (stored Goal, created bool, err error)
	// Goal returns one goal of the user.
	Goal(ctx context.Context, userID, goalID string) (Goal, error)
	// DeleteGoal deletes one goal of the user.
	DeleteGoal(ctx context.Context, userID, goalID string) error
	// UserGoals returns the user's goals, by goal id.
	UserGoals(ctx context.Context, userID string) ([]Goal, error)
}

// Service validates and keeps goals.
type Service struct {
	store Store
	now   func() time.Time
}

// New returns the goals service; now nil means time.Now.
func New(store Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, now: now}
}

// Put creates or replaces the user's goal. Errors: ErrInvalid naming the
// field at fault; ErrConflict when the user already has MaxGoalsPerUser goals.
func (s *Service) Put(ctx context.Context, userID, goalID string, in Input) (Goal, bool, error) {
	if err := ValidateIDs(userID, goalID); err != nil {
		return Goal{}, false, err
	}
	g, err := validate(in)
	if err != nil {
		return Goal{}, false, err
	}
	existing, err := s.store.UserGoals(ctx, userID)
	if err != nil {
		return Goal{}, false, err
	}
	if len(existing) >= MaxGoalsPerUser && !slices.ContainsFunc(existing, func(e Goal) bool { return e.GoalID == goalID }) {
		return Goal{}, false, commserver.Errorf(commserver.CodeConflict, "user %s has %d goals; the limit is %d", userID, len(existing), MaxGoalsPerUser)
	}
	now := commserver.JSTime(s.now().UTC().Truncate(time.Millisecond))
	g.UserID, g.GoalID, g.CreatedAt, g.UpdatedAt = userID, goalID, now, now
	return s.store.PutGoal(ctx, g)
}

// Get returns one goal. Errors: ErrInvalid for malformed ids, ErrNotFound.
func (s *Service) Get(ctx context.Context, userID, goalID string) (Goal, error) {
	if err := ValidateIDs(userID, goalID); err != nil {
		return Goal{}, err
	}
	return s.store.Goal(ctx, userID, goalID)
}

// Delete deletes one goal. Errors: ErrInvalid for malformed ids, ErrNotFound.
func (s *Service) Delete(ctx context.Context, userID, goalID string) error {
	if err := ValidateIDs(userID, goalID); err != nil {
		return err
	}
	return s.store.DeleteGoal(ctx, userID, goalID)
}

// List returns the user's goals (an empty list when none).
func (s *Service) List(ctx context.Context, userID string) ([]Goal, error) {
	if err := validateUserID(userID); err != nil {
		return nil, err
	}
	gs, err := s.store.UserGoals(ctx, userID)
	if gs == nil && err == nil {
		gs = []Goal{}
	}
	return gs, err
}

// ValidateIDs checks the user id (present, at most MaxUserIDLength bytes, no
// spaces, control characters or '/') and the goal id (1 to MaxGoalIDLength
// letters, digits or _ . : -).
func ValidateIDs(userID, goalID string) error {
	if err := validateUserID(userID); err != nil {
		return err
	}
	if goalID == "" || len(goalID) > MaxGoalIDLength || strings.IndexFunc(goalID, func(r rune) bool {
		return !(r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("_.:-", r)))
	}) >= 0 {
		return commserver.Invalid("goalId", "goalId must be 1 to %d letters, digits or _ . : -", MaxGoalIDLength)
	}
	return nil
}

func validateUserID(userID string) error {
	switch {
	case userID == "":
		return commserver.Invalid("userId", "userId is required")
	case len(userID) > MaxUserIDLength:
		return commserver.Invalid("userId", "userId is longer than %d characters", MaxUserIDLength)
	case strings.IndexFunc(userID, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == '/' }) >= 0:
		return commserver.Invalid("userId", "userId may not contain spaces, control characters or /")
	}
	return nil
}

// validate checks the body and returns the goal it describes (without ids and times).
func validate(in Input) (Goal, error) {
	var g Goal
	switch {
	case in.Name == nil:
		return g, commserver.Invalid("name", "name is required")
	case strings.TrimSpace(*in.Name) == "":
		return g, commserver.Invalid("name", "name may not be blank")
	case utf8.RuneCountInString(*in.Name) > MaxNameLength:
		return g, commserver.Invalid("name", "name is %d characters; the limit is %d", utf8.RuneCountInString(*in.Name), MaxNameLength)
	case strings.IndexFunc(*in.Name, unicode.IsControl) >= 0:
		return g, commserver.Invalid("name", "name may not contain control characters")
	}
	g.Name = strings.TrimSpace(*in.Name)
	if in.Metric == nil || !slices.Contains(Metrics, Metric(*in.Metric)) {
		return g, commserver.Invalid("metric", "metric is required: one of workouts, minutes, calories, workoutDays")
	}
	g.Metric = Metric(*in.Metric)
	if in.Period == nil || !slices.Contains(Periods, Period(*in.Period)) {
		return g, commserver.Invalid("period", "period is required: week or month")
	}
	g.Period = Period(*in.Period)
	if in.Target == nil {
		return g, commserver.Invalid("target", "target is required: a positive number")
	}
	t := *in.Target
	switch {
	case math.IsNaN(t) || t <= 0 || t > MaxTarget:
		return g, commserver.Invalid("target", "target must be a positive number up to %g", float64(MaxTarget))
	case (g.Metric == MetricWorkouts || g.Metric == MetricWorkoutDays) && t != math.Trunc(t):
		return g, commserver.Invalid("target", "target of a %s goal must be a whole number", g.Metric)
	case g.Metric == MetricWorkoutDays && g.Period == PeriodWeek && t > 7:
		return g, commserver.Invalid("target", "a week has 7 days: target of a weekly workoutDays goal is at most 7")
	case g.Metric == MetricWorkoutDays && g.Period == PeriodMonth && t > 31:
		return g, commserver.Invalid("target", "a month has at most 31 days: target of a monthly workoutDays goal is at most 31")
	}
	g.Target = t
	return g, nil
}

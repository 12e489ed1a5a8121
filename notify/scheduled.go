package notify

import (
	"context"
	"fmt"
)

// What the scheduled jobs send (package scheduler), in the seed's words.

// The seed's weekly report texts (scheduler.service.ts).
const (
	weeklyReportTitle = "주간 운동 리포트 📊"
)

// WeeklyReport is the seed's weekly statistics, as the weekly_report
// notification's data holds them.
type WeeklyReport struct {
	WorkoutDays        int // distinct days with a workout
	TotalCalories      int // rounded to a whole number
	TotalWorkouts      int
	AverageWorkoutTime int // minutes, rounded
}

// CreateOnce creates the notification under the given id (a 24-hex
// ObjectId the caller derives from what the notification is for) unless
// one with that id exists: then it returns that one with created false and
// pushes nothing. A job retried, or run twice at once, notifies once.
// Errors: those of Create; ErrInvalid on field id for a malformed id.
func (s *Service) CreateOnce(ctx context.Context, id string, in CreateInput) (Notification, bool, error) {
	if err := ValidateID("id", id); err != nil {
		return Notification{}, false, err
	}
	n, err := s.build(in)
	if err != nil {
		return Notification{}, false, err
	}
	n.ID = id
	stored, created, err := s.store.InsertNotificationOnce(ctx, n)
	if err != nil {
		return Notification{}, false, err
	}
	if created {
		s.deliver(ctx, []Notification{stored})
	}
	return stored, created, nil
}

// WorkoutReminderInput is the seed's workout reminder for the user.
func WorkoutReminderInput(userID string) CreateInput {
	return CreateInput{UserID: userID, Title: workoutReminderTitle, Message: workoutReminderMessage, Type: TypeWorkoutReminder}
}

// GoalAchievedInput is the seed's goal-achieved notification; goal needs
// goalName and is stored whole as data.
func GoalAchievedInput(userID string, goal map[string]any) (CreateInput, error) {
	name, err := nameField(goal, "goalName")
	if err != nil {
		return CreateInput{}, err
	}
	return CreateInput{UserID: userID, Title: goalAchievedTitle, Message: name + " 목표를 달성했습니다! 축하드려요!",
		Type: TypeGoalAchieved, Data: goal}, nil
}

// WeeklyReportInput is the seed's weekly report with the user's figures:
// title and message as the seed wrote them, data { workoutDays,
// totalCalories, totalWorkouts, averageWorkoutTime }.
func WeeklyReportInput(userID string, r WeeklyReport) CreateInput {
	return CreateInput{UserID: userID, Title: weeklyReportTitle,
		Message: fmt.Sprintf("이번 주 %d일 운동했어요! 총 %d칼로리 소모!", r.WorkoutDays, r.TotalCalories),
		Type:    TypeWeeklyReport,
		// float64, as decoded JSON has numbers: stored as Node would have (int32 when whole).
		Data: map[string]any{"workoutDays": float64(r.WorkoutDays), "totalCalories": float64(r.TotalCalories),
			"totalWorkouts": float64(r.TotalWorkouts), "averageWorkoutTime": float64(r.AverageWorkoutTime)}}
}

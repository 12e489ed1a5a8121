package gateway

import (
	"context"
	"net/url"
	"time"

	"github.com/fitmate/commserver/chat"
	"github.com/fitmate/commserver/goals"
	"github.com/fitmate/commserver/notify"
	"github.com/fitmate/commserver/sms"
)

// The domain operations the REST routes call, declared here, where they are
// consumed; chat.Service, notify.Service, sms.Service and goals.Service
// implement them (the Socket.IO events' needs are ChatEvents and
// UnreadCounter, in lifecycle.go). Errors are commserver errors, mapped to
// statuses by the one table (errors.go).

// ChatAPI is what the chat routes and the service-credential check ask of the chat domain.
type ChatAPI interface {
	PutRoom(ctx context.Context, roomID string, members []string) (chat.Room, error)
	Room(ctx context.Context, roomID string) (chat.Room, error)
	History(ctx context.Context, id chat.Identity, roomID string, page, limit int) (chat.Page, error)
	HistoryBefore(ctx context.Context, id chat.Identity, roomID, before string, limit int) (chat.CursorPage, error)
	MarkRead(ctx context.Context, id chat.Identity, roomID string) (int64, error)
	Delete(ctx context.Context, id chat.Identity, messageID string) (chat.Message, error)
	ChatUsers(ctx context.Context, id chat.Identity) ([]chat.ChatUser, error)
	// IsAdmin reports whether id is an admin, by token or by the user's document.
	IsAdmin(ctx context.Context, id chat.Identity) bool
}

// Notifications is what the notification routes ask of package notify.
type Notifications interface {
	List(ctx context.Context, userID string, page, limit int) (notify.Page, error)
	UnreadCount(ctx context.Context, userID string) (int64, error)
	MarkRead(ctx context.Context, userID, id string) (notify.Notification, error)
	MarkAllRead(ctx context.Context, userID string) (int64, error)
	Delete(ctx context.Context, userID, id string) (notify.Notification, error)
	Create(ctx context.Context, in notify.CreateInput) (notify.Notification, error)
	WorkoutCompleted(ctx context.Context, userID string, workout map[string]any) (notify.Notification, error)
	GoalAchieved(ctx context.Context, userID string, goal map[string]any) (notify.Notification, error)
	WorkoutReminder(ctx context.Context, userID string) (notify.Notification, error)
}

// Texts is what the SMS routes ask of package sms.
type Texts interface {
	Send(ctx context.Context, phoneNumber, message string) (sms.Result, error)
	SendWorkoutReminder(ctx context.Context, phoneNumber, userName, workoutType string) (sms.Result, error)
	SendWorkoutRecommendation(ctx context.Context, phoneNumber, userName string, exercises []string) (sms.Result, error)
	Statistics(ctx context.Context, from, to time.Time) ([]sms.Stat, error)
	RequestOTP(ctx context.Context, phoneNumber, clientIP string) error
	VerifyOTP(ctx context.Context, phoneNumber, code, clientIP string) (bool, error)
	// HandleStatusCallback checks Twilio's signature and records the status; false: the signature is wrong.
	HandleStatusCallback(ctx context.Context, requestURI string, form url.Values, signature string) (bool, error)
}

// Goals is what the goals routes ask of package goals.
type Goals interface {
	Put(ctx context.Context, userID, goalID string, in goals.Input) (goals.Goal, bool, error)
	Get(ctx context.Context, userID, goalID string) (goals.Goal, error)
	Delete(ctx context.Context, userID, goalID string) error
	List(ctx context.Context, userID string) ([]goals.Goal, error)
}

var (
	_ ChatEvents    = (*chat.Service)(nil)
	_ ChatAPI       = (*chat.Service)(nil)
	_ Notifications = (*notify.Service)(nil)
	_ UnreadCounter = (*notify.Service)(nil)
	_ Texts         = (*sms.Service)(nil)
	_ Goals         = (*goals.Service)(nil)
)

// Package notify is the notification domain: what a user is told (a workout
// was recorded, a goal was reached, a reminder is due, a chat message arrived
// while they were away), stored so nothing is lost while they are offline,
// pushed live to every socket they have open, and counted so the app's badge
// is always right.
//
// The service does not know about Socket.IO or MongoDB. It consumes a Store
// (implemented by package store), a Publisher (implemented by the gateway's
// hub), an OnlineChecker (implemented by package presence) and an
// OfflineChannel (implemented by package sms),
// all declared here, so imports flow one way: the gateway imports notify,
// never the reverse.
package notify

import (
	"encoding/json"
	"time"

	commserver "github.com/fitmate/commserver"
)

// Notification types: the seed's enum, plus weekly_report, which the seed's
// scheduler wrote but its schema forgot.
const (
	TypeWorkoutCompleted = "workout_completed"
	TypeGoalAchieved     = "goal_achieved"
	TypeWorkoutReminder  = "workout_reminder"
	TypeChatMessage      = "chat_message"
	TypeSystem           = "system"
	TypeCustom           = "custom"
	TypeWeeklyReport     = "weekly_report"
)

// Types lists every valid type, in the order error messages name them.
var Types = []string{TypeWorkoutCompleted, TypeGoalAchieved, TypeWorkoutReminder, TypeChatMessage,
	TypeSystem, TypeCustom, TypeWeeklyReport}

// Priorities (the seed's enum; normal is the default).
const (
	PriorityLow    = "low"
	PriorityNormal = "normal"
	PriorityHigh   = "high"
	PriorityUrgent = "urgent"
)

// Priorities lists every valid priority.
var Priorities = []string{PriorityLow, PriorityNormal, PriorityHigh, PriorityUrgent}

// Events the user's sockets hear. Names are the seed's: the React app listens for them.
const (
	// EventNewNotification carries the stored notification.
	EventNewNotification = "newNotification"
	// EventUnreadCount carries the user's unread count, a number, recounted
	// from the store after every change to the unread set.
	EventUnreadCount = "unreadNotificationCount"
)

// Notification is a notification as the app sees it: the JSON shape of a
// Mongoose document of the NestJS server (see MarshalJSON).
type Notification struct {
	ID        string
	UserID    string
	Title     string
	Message   string
	Type      string
	Data      map[string]any // nil when absent
	IsRead    bool
	ReadAt    *time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
	ExpiresAt *time.Time // nil: never expires
	Priority  string
}

// MarshalJSON writes the notification as Mongoose's toJSON did: _id, the
// schema's fields, the timestamps and __v; data, readAt and expiresAt only
// when set.
func (n Notification) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		ID        string             `json:"_id"`
		UserID    string             `json:"userId"`
		Title     string             `json:"title"`
		Message   string             `json:"message"`
		Type      string             `json:"type"`
		Data      map[string]any     `json:"data,omitempty"`
		IsRead    bool               `json:"isRead"`
		ReadAt    *commserver.JSTime `json:"readAt,omitempty"`
		CreatedAt commserver.JSTime  `json:"createdAt"`
		UpdatedAt commserver.JSTime  `json:"updatedAt"`
		ExpiresAt *commserver.JSTime `json:"expiresAt,omitempty"`
		Priority  string             `json:"priority"`
		V         int                `json:"__v"`
	}{n.ID, n.UserID, n.Title, n.Message, n.Type, n.Data, n.IsRead, commserver.JSTimePtr(n.ReadAt),
		commserver.JSTime(n.CreatedAt), commserver.JSTime(n.UpdatedAt), commserver.JSTimePtr(n.ExpiresAt), n.Priority, 0})
}

// CreateInput is what the main backend (or this server) asks to notify.
type CreateInput struct {
	UserID    string
	Title     string
	Message   string
	Type      string
	Data      map[string]any // optional
	Priority  string         // optional; normal when empty
	ExpiresAt *time.Time     // optional; must be in the future
}

// Page is one page of a user's notifications, newest first, with the
// user's totals (unexpired notifications only).
type Page struct {
	Notifications []Notification `json:"notifications"`
	TotalCount    int64          `json:"totalCount"`
	UnreadCount   int64          `json:"unreadCount"`
}

// Contact is what the users collection says about reaching a user outside
// the app: the fields the seed's scheduler read.
type Contact struct {
	PhoneNumber string // phoneNumber; empty when absent
	SMSEnabled  bool   // smsNotificationEnabled is true
}

package gateway

import (
	"net/http"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/notify"
	"github.com/gin-gonic/gin"
)

// The notification routes. User routes act on the caller's own
// notifications only: another user's id answers 404, so ids cannot be
// probed. Service routes (X-API-Key or an admin's JWT) create notifications.

// listNotifications: GET /notifications?page=&limit= answers
// { notifications, totalCount, unreadCount }, newest first.
func (a *api) listNotifications(c *gin.Context) {
	page, err := queryInt(c, "page", 1)
	if err != nil {
		a.writeError(c, err)
		return
	}
	limit, err := queryInt(c, "limit", notify.DefaultPageLimit)
	if err != nil {
		a.writeError(c, err)
		return
	}
	res, err := a.Notify.List(c.Request.Context(), principalOf(c).UserID, page, limit)
	if err != nil {
		a.writeError(c, err)
		return
	}
	ok(c, gin.H{"notifications": res.Notifications, "totalCount": res.TotalCount, "unreadCount": res.UnreadCount,
		"page": page, "limit": limit})
}

// unreadNotificationCount: GET /notifications/unread-count answers { unreadCount }.
func (a *api) unreadNotificationCount(c *gin.Context) {
	n, err := a.Notify.UnreadCount(c.Request.Context(), principalOf(c).UserID)
	if err != nil {
		a.writeError(c, err)
		return
	}
	ok(c, gin.H{"unreadCount": n})
}

// markNotificationRead: PATCH /notifications/:id/read. The user's sockets get the new count.
func (a *api) markNotificationRead(c *gin.Context) {
	n, err := a.Notify.MarkRead(c.Request.Context(), principalOf(c).UserID, c.Param("id"))
	if err != nil {
		a.writeError(c, err)
		return
	}
	ok(c, gin.H{"notification": n})
}

// markAllNotificationsRead: PATCH /notifications/read-all. The user's sockets get the new count.
func (a *api) markAllNotificationsRead(c *gin.Context) {
	n, err := a.Notify.MarkAllRead(c.Request.Context(), principalOf(c).UserID)
	if err != nil {
		a.writeError(c, err)
		return
	}
	ok(c, gin.H{"modifiedCount": n})
}

// deleteNotification: DELETE /notifications/:id deletes one of the caller's notifications.
func (a *api) deleteNotification(c *gin.Context) {
	n, err := a.Notify.Delete(c.Request.Context(), principalOf(c).UserID, c.Param("id"))
	if err != nil {
		a.writeError(c, err)
		return
	}
	ok(c, gin.H{"notificationId": n.ID})
}

// createNotification: POST /notifications
// { userId, title, message, type, data?, priority?, expiresAt? (RFC 3339) }.
func (a *api) createNotification(c *gin.Context) {
	var body struct {
		UserID    string         `json:"userId"`
		Title     string         `json:"title"`
		Message   string         `json:"message"`
		Type      string         `json:"type"`
		Data      map[string]any `json:"data"`
		Priority  string         `json:"priority"`
		ExpiresAt *string        `json:"expiresAt"`
	}
	if err := decodeJSON(c, &body); err != nil {
		a.writeError(c, err)
		return
	}
	in := notify.CreateInput{UserID: body.UserID, Title: body.Title, Message: body.Message, Type: body.Type,
		Data: body.Data, Priority: body.Priority}
	if body.ExpiresAt != nil {
		t, err := time.Parse(time.RFC3339Nano, *body.ExpiresAt)
		if err != nil {
			a.writeError(c, commserver.Invalid("expiresAt", "expiresAt must be an RFC 3339 date-time such as 2025-01-31T09:00:00Z, got %q", *body.ExpiresAt))
			return
		}
		in.ExpiresAt = &t
	}
	n, err := a.Notify.Create(c.Request.Context(), in)
	if err != nil {
		a.writeError(c, err)
		return
	}
	created(c, n)
}

// helperBody reads a helper's body: a JSON object with a string userId; the
// rest of it is the record the notification is about.
func helperBody(c *gin.Context) (string, map[string]any, error) {
	var body map[string]any
	if err := decodeJSON(c, &body); err != nil {
		return "", nil, err
	}
	if body == nil {
		return "", nil, commserver.Invalid("", "request body must be a JSON object")
	}
	v, present := body["userId"]
	userID, isString := v.(string)
	if present && v != nil && !isString {
		return "", nil, commserver.Invalid("userId", "userId must be a string")
	}
	delete(body, "userId")
	return userID, body, nil
}

// workoutCompletedNotification: POST /notifications/workout-completed
// { userId, exerciseName, duration, calories, ... }; the record is stored as data.
func (a *api) workoutCompletedNotification(c *gin.Context) {
	userID, workout, err := helperBody(c)
	if err == nil {
		var n notify.Notification
		if n, err = a.Notify.WorkoutCompleted(c.Request.Context(), userID, workout); err == nil {
			created(c, n)
			return
		}
	}
	a.writeError(c, err)
}

// goalAchievedNotification: POST /notifications/goal-achieved { userId, goalName, ... }.
func (a *api) goalAchievedNotification(c *gin.Context) {
	userID, goal, err := helperBody(c)
	if err == nil {
		var n notify.Notification
		if n, err = a.Notify.GoalAchieved(c.Request.Context(), userID, goal); err == nil {
			created(c, n)
			return
		}
	}
	a.writeError(c, err)
}

// workoutReminderNotification: POST /notifications/workout-reminder { userId }.
func (a *api) workoutReminderNotification(c *gin.Context) {
	userID, _, err := helperBody(c)
	if err == nil {
		var n notify.Notification
		if n, err = a.Notify.WorkoutReminder(c.Request.Context(), userID); err == nil {
			created(c, n)
			return
		}
	}
	a.writeError(c, err)
}

// created answers 201 with { success: true, notification } (NestJS answered POSTs with 201).
func created(c *gin.Context, n notify.Notification) {
	c.JSON(http.StatusCreated, gin.H{"success": true, "notification": n})
}

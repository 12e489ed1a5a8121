// Package sms sends the app's text messages (workout reminders and
// recommendations, phone verification codes, custom texts, high-priority
// notifications to offline users) and keeps the smslogs record of every send.
//
// It is built to be safe on the open internet, where SMS costs money per
// message: every number is normalized to E.164 and checked against a country
// allowlist before anything is sent; every send is capped per number; one-time
// passwords are random, stored only as peppered hashes in Redis, single use,
// attempt-limited and rate-limited per number, per client IP and globally; the
// codes never reach the log, the application logs or an error.
//
// The service consumes a Store (package store implements it over MongoDB), a
// Sender (TwilioSender over Twilio's API, or LogSender for development) and a
// Limiter (RedisLimiter across instances, MemoryLimiter for a single one).
package sms

import (
	"context"
	"fmt"
	"time"
)

// Template is the kind of a message: the smslogs templateType.
type Template string

// The templates. The first four are the seed's names.
const (
	TemplateWorkoutReminder       Template = "workout_reminder"
	TemplateWorkoutRecommendation Template = "workout_recommendation"
	TemplateOTP                   Template = "otp_verification"
	TemplateCustom                Template = "custom"
	TemplateNotification          Template = "notification" // a high/urgent notification to an offline user
)

// Status is a message's delivery status in smslogs: Twilio's message statuses
// plus three of ours (pending, unknown, logged).
type Status string

// The statuses. Twilio's are documented at
// https://www.twilio.com/docs/messaging/api/message-resource#message-status-values.
const (
	// StatusPending: the row is written and the send is in flight. A row left
	// pending means the process stopped mid-send; Twilio's callback settles it.
	StatusPending Status = "pending"
	// StatusUnknown: Twilio did not answer the create (timeout, 5xx). Twilio
	// documents that a create is not idempotent, so it is not retried: the row
	// stays unknown until the status callback says what happened.
	StatusUnknown     Status = "unknown"
	StatusAccepted    Status = "accepted"
	StatusScheduled   Status = "scheduled"
	StatusQueued      Status = "queued"
	StatusSending     Status = "sending"
	StatusSent        Status = "sent"
	StatusDelivered   Status = "delivered"
	StatusUndelivered Status = "undelivered"
	StatusFailed      Status = "failed"
	StatusCanceled    Status = "canceled"
	StatusRead        Status = "read"
	// StatusLogged: SMS_SENDER=log wrote the message to the application log
	// instead of sending it (development only).
	StatusLogged Status = "logged"
)

// statusRank orders the statuses: a row's status only ever moves to a higher
// rank, so a duplicate or late status callback changes nothing. Final
// statuses share a rank: once delivered, a late "undelivered" is ignored.
var statusRank = map[Status]int{
	StatusPending:     0,
	StatusUnknown:     1,
	StatusAccepted:    2,
	StatusScheduled:   2,
	StatusQueued:      3,
	StatusSending:     4,
	StatusSent:        5,
	StatusDelivered:   6,
	StatusUndelivered: 6,
	StatusFailed:      6,
	StatusCanceled:    6,
	StatusLogged:      6,
	StatusRead:        7,
}

// ParseStatus returns the Status named s, or false when s is not one.
func ParseStatus(s string) (Status, bool) {
	st := Status(s)
	_, ok := statusRank[st]
	return st, ok
}

// StatusesBefore lists the statuses a row may move from to reach s: those of
// a lower rank. The store uses it as the condition of its update, which makes
// "forward only" atomic.
func StatusesBefore(s Status) []Status {
	r, ok := statusRank[s]
	if !ok {
		return nil
	}
	var out []Status
	for st, rank := range statusRank {
		if rank < r {
			out = append(out, st)
		}
	}
	return out
}

// LogEntry is one smslogs document: one attempted send.
type LogEntry struct {
	ID           string    `json:"_id"`
	PhoneNumber  string    `json:"phoneNumber"` // E.164
	Message      string    `json:"message"`     // the text sent, with any OTP code masked
	TemplateType Template  `json:"templateType"`
	Status       Status    `json:"status"`
	TwilioSID    string    `json:"twilioSid,omitempty"`
	ErrorMessage string    `json:"errorMessage,omitempty"`
	ErrorCode    int       `json:"errorCode,omitempty"` // Twilio's error code, when it gave one
	Timestamp    time.Time `json:"timestamp"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
}

// StatusUpdate moves a log entry forward: after a send, or from Twilio's
// status callback.
type StatusUpdate struct {
	LogID        string // the entry's id; when empty the entry is found by SID
	SID          string // Twilio's message SID; recorded when the entry has none
	Status       Status
	ErrorCode    int
	ErrorMessage string
}

// Stat is one line of the statistics: how many messages have a status. The
// JSON shape is the seed's Mongo aggregate output, { _id: status, count }.
type Stat struct {
	Status Status `json:"_id"`
	Count  int64  `json:"count"`
}

// Store keeps the smslogs collection.
type Store interface {
	// InsertSMSLog stores e (its ID is ignored) and returns the new entry's id.
	// It returns commserver.ErrStorageUnavailable when the database does not answer.
	InsertSMSLog(ctx context.Context, e LogEntry) (string, error)
	// AdvanceSMSLog applies u to its entry if u.Status is later than the
	// entry's status (see StatusesBefore), and records u.SID on an entry that
	// has none. It reports whether the status moved. An unknown entry is not an error.
	AdvanceSMSLog(ctx context.Context, u StatusUpdate) (bool, error)
	// SMSStatistics counts the entries whose timestamp is in [from, to], by status.
	SMSStatistics(ctx context.Context, from, to time.Time) ([]Stat, error)
}

// Message is one text to send.
type Message struct {
	To             string // E.164
	Body           string // the text; may hold a secret (an OTP code): never log it
	Redacted       string // the text with any secret masked: what logs may show
	StatusCallback string // where Twilio reports delivery, or empty
}

// Receipt is the provider's answer to an accepted message.
type Receipt struct {
	SID    string
	Status Status
}

// Sender delivers messages.
type Sender interface {
	// Send delivers m. When it fails it returns a *SendError saying whether
	// the message may nevertheless have gone out (Unknown).
	Send(ctx context.Context, m Message) (Receipt, error)
}

// SendError is a send that did not succeed.
type SendError struct {
	// Unknown: the provider may have accepted the message (a timeout or a 5xx
	// after the request was written). Such a send must not be retried blindly.
	Unknown bool
	// NotConfigured: no provider is configured; nothing was attempted.
	NotConfigured bool
	// Permanent: the provider refused the number itself (invalid, not mobile,
	// unsubscribed); sending to it again will fail again.
	Permanent  bool
	HTTPStatus int    // the provider's HTTP status, when it answered
	Code       int    // the provider's error code (Twilio's), when it gave one
	Message    string // the provider's message or our description; never holds the body
	Err        error
}

func (e *SendError) Error() string {
	switch {
	case e.Code != 0:
		return fmt.Sprintf("twilio error %d (HTTP %d): %s", e.Code, e.HTTPStatus, e.Message)
	case e.HTTPStatus != 0:
		return fmt.Sprintf("twilio HTTP %d: %s", e.HTTPStatus, e.Message)
	default:
		return e.Message
	}
}

// Unwrap returns the cause.
func (e *SendError) Unwrap() error { return e.Err }

// Limiter counts events in fixed windows, per key.
type Limiter interface {
	// Allow counts one event under key and reports whether it is within limit
	// events per window; when it is not, retryAfter says when the window ends.
	// It returns commserver.ErrUnavailable when its backing store does not answer.
	Allow(ctx context.Context, key string, limit int, window time.Duration) (ok bool, retryAfter time.Duration, err error)
}

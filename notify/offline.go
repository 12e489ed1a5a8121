package notify

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// OfflineDecision is one notification RecordingChannel was handed.
type OfflineDecision struct {
	UserID      string
	PhoneNumber string
	Title       string
	Body        string
	At          time.Time
}

// maxRecorded is how many decisions RecordingChannel keeps (the newest).
const maxRecorded = 1000

// RecordingChannel is the OfflineChannel used until an SMS channel is wired:
// it sends nothing, and records and logs each decision to reach a user
// outside the app, so that operators and tests can see it. The phone number
// is logged masked. It is safe for concurrent use.
type RecordingChannel struct {
	log *slog.Logger

	mu        sync.Mutex
	decisions []OfflineDecision
}

var _ OfflineChannel = (*RecordingChannel)(nil)

// NewRecordingChannel returns a RecordingChannel that logs to log.
func NewRecordingChannel(log *slog.Logger) *RecordingChannel { return &RecordingChannel{log: log} }

// SendOffline records the decision; it never fails.
func (c *RecordingChannel) SendOffline(_ context.Context, userID, phoneNumber, title, body string) error {
	c.mu.Lock()
	if len(c.decisions) == maxRecorded {
		c.decisions = append(c.decisions[:0], c.decisions[1:]...)
	}
	c.decisions = append(c.decisions, OfflineDecision{UserID: userID, PhoneNumber: phoneNumber, Title: title,
		Body: body, At: time.Now()})
	c.mu.Unlock()
	c.log.Info("offline notification: would send SMS, but no SMS channel is wired",
		"user", userID, "phone", MaskPhone(phoneNumber), "title", title)
	return nil
}

// Decisions returns a copy of what was recorded, oldest first.
func (c *RecordingChannel) Decisions() []OfflineDecision {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]OfflineDecision(nil), c.decisions...)
}

// MaskPhone keeps the last four digits of a phone number, for logs.
func MaskPhone(p string) string {
	r := []rune(p)
	if len(r) <= 4 {
		return "****"
	}
	return "****" + string(r[len(r)-4:])
}

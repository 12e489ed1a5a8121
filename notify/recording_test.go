package notify_test

import (
	"context"
	"sync"

	"github.com/fitmate/commserver/notify"
)

// recordingChannel is the notify.OfflineChannel of these tests: it sends
// nothing and records each text the service decided to send. (The product
// wires package sms; sms's own tests send through Prism's Twilio.)
type recordingChannel struct {
	mu        sync.Mutex
	decisions []offlineDecision
}

// offlineDecision is one text recordingChannel was handed.
type offlineDecision struct {
	UserID, PhoneNumber, Title, Body string
}

var _ notify.OfflineChannel = (*recordingChannel)(nil)

func (c *recordingChannel) SendOffline(_ context.Context, userID, phoneNumber, title, body string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.decisions = append(c.decisions, offlineDecision{UserID: userID, PhoneNumber: phoneNumber, Title: title, Body: body})
	return nil
}

// Decisions returns a copy of what was recorded, oldest first.
func (c *recordingChannel) Decisions() []offlineDecision {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]offlineDecision(nil), c.decisions...)
}

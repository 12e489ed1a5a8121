package scheduler_test

import (
	"context"
	"testing"
	"time"

	"github.com/fitmate/commserver/scheduler"
	"github.com/fitmate/commserver/sms"
	twiliomock "github.com/fitmate/commserver/test/twilio-mock"
	"github.com/jonboulle/clockwork"
)

// smsStatuses counts smslogs entries by status.
func smsStatuses(t *testing.T, w *world) map[sms.Status]int64 {
	t.Helper()
	stats, err := w.db.SMSStatistics(context.Background(), time.Time{}, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	out := map[sms.Status]int64{}
	for _, s := range stats {
		out[s.Status] = s.Count
	}
	return out
}

// Reminder texts go through the SMS service to Twilio's OpenAPI spec (Prism):
// the real client's requests are what Twilio accepts, each logged in smslogs.
func TestReminderTextsThroughTwiliosSpec(t *testing.T) {
	prism := twiliomock.StartPrism(t)
	now := at("2025-01-15T00:00:01Z")
	w, cast := newReminderWorld(t, now)
	pod := w.instance("pod-a", setup{sms: w.texter(prism), options: func(o *scheduler.Options) { o.Clock = clockwork.NewFakeClockAt(now) }})
	r, err := pod.RunNow(context.Background(), reminder)
	if err != nil || r.Counts.Sent != 7 || r.Counts.Details["textsSent"] != 4 {
		t.Fatalf("run: %+v, %v; want 7 notified, 4 texted", r.Counts, err)
	}
	if got := smsStatuses(t, w); got[sms.StatusQueued] != 4 || len(got) != 1 {
		t.Errorf("smslogs by status %v, want 4 queued", got)
	}
	cast.check(t, w, nil)
}

// Twilio down (5xx: the outcome is unknown, so it is not retried) and
// refusing (4xx: failed): every text is logged unknown or failed, never
// dropped; the in-app reminder goes out regardless; a second run sends no
// text again.
func TestTwilioOutageLogsEveryTextAndNotifiesAnyway(t *testing.T) {
	now := at("2025-01-15T00:00:01Z")
	w, cast := newReminderWorld(t, now)
	tw := twiliomock.StartFake(t,
		twiliomock.Reply{Status: 503, Code: 20503, Message: "Service Unavailable"},
		twiliomock.Reply{Status: 400, Code: 21610, Message: "Attempt to send to unsubscribed recipient"},
		twiliomock.Reply{Status: 500, Code: 20500, Message: "Internal Server Error"},
		twiliomock.Reply{Status: 400, Code: 30007, Message: "Message filtered"},
	)
	opts := func(o *scheduler.Options) { o.Clock = clockwork.NewFakeClockAt(now) }
	pod := w.instance("pod-a", setup{sms: w.texter(tw.URL), options: opts})
	r, err := pod.RunNow(context.Background(), reminder)
	if err != nil || r.State != scheduler.StateOK || r.Counts.Sent != 7 {
		t.Fatalf("run: %+v, %v; want every in-app reminder sent", r, err)
	}
	if d := r.Counts.Details; d["textsUnknown"] != 2 || d["textsFailed"] != 2 || d["textsSent"] != 0 {
		t.Errorf("text outcomes %v, want 2 unknown and 2 failed", d)
	}
	if got := smsStatuses(t, w); got[sms.StatusUnknown] != 2 || got[sms.StatusFailed] != 2 || len(got) != 2 {
		t.Errorf("smslogs by status %v, want 2 unknown, 2 failed", got)
	}
	if got := pod.count(t, "commserver_job_items_total", map[string]string{"job": reminder, "outcome": "textsUnknown"}); got != 2 {
		t.Errorf("metrics count %v unknown texts", got)
	}
	again, err := pod.RunNow(context.Background(), reminder)
	if err != nil || again.Counts.Sent != 0 || again.Counts.Skipped != 7 {
		t.Fatalf("second run: %+v, %v", again.Counts, err)
	}
	if creates := len(tw.Creates()); creates != 4 {
		t.Errorf("Twilio got %d creates, want 4 (one per text, none again)", creates)
	}
	cast.check(t, w, nil)
}

package scheduler

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/notify"
	"github.com/fitmate/commserver/sms"
)

// due is what a job owes one recipient in one period.
type due struct {
	period    string    // the delivery's period (the slot, or a goal's week or month)
	recipient string    // whom the key names: a user, or user/goal
	userID    string    // who is notified
	at        time.Time // the notification id's time: the period's start
	input     notify.CreateInput
	text      *Contact // non-nil: a text is due too
}

// deliver gives one recipient its due, once across every run and instance:
// the notification goes in under an id derived from the delivery key (an
// earlier attempt's insert makes this one a no-op), the text is claimed
// under its own key before it is sent, and the delivery is recorded so
// later runs skip the recipient. A recipient whose notification or claim
// could not be written is left unrecorded: the next run serves it.
// ctx is never canceled by a stop request: a recipient is never cut in half.
func (s *Scheduler) deliver(ctx context.Context, r *runState, x due) {
	d := Delivery{Key: deliveryKey(r.job, x.period, x.recipient), Job: r.job, Period: x.period, Recipient: x.recipient,
		UserID: x.userID, RunID: r.id, At: s.clock.Now()}
	d.NotificationID = notificationID(x.at, d.Key)
	_, created, err := s.d.Notify.CreateOnce(ctx, d.NotificationID, x.input)
	if err != nil {
		r.failed()
		s.log.Warn("job: notification not created; the next run retries", "job", r.job, "user", x.userID, "err", err)
		return
	}
	d.Created = created
	if x.text != nil && s.d.SMS != nil {
		o, err := s.text(ctx, r, d, *x.text)
		if err != nil {
			r.failed()
			s.log.Warn("job: text not claimed; the next run retries it", "job", r.job, "user", x.userID, "err", err)
			return
		}
		d.Text = o
	}
	d.At = s.clock.Now()
	if err := s.d.Store.RecordDelivery(ctx, d); err != nil {
		// The notification's id and the text's claim keep a retry from sending twice.
		s.log.Warn("job: delivery not recorded; a retry finds it done", "job", r.job, "user", x.userID, "err", err)
	}
	if created {
		r.sent()
	} else {
		r.skipped()
		r.detail("alreadyNotified", 1)
	}
}

// reminderWorkoutType is what the seed's scheduler put in its reminder text.
const reminderWorkoutType = "오늘의 운동"

// text sends a delivery's workout-reminder text at most once: it claims the
// text first; a claim that exists means an earlier attempt sent it, or died
// sending it (Twilio's create is not idempotent, so it is not sent again;
// smslogs holds that attempt's pending or unknown entry). An error means the
// claim could not be written and nothing was sent.
func (s *Scheduler) text(ctx context.Context, r *runState, d Delivery, c Contact) (*TextOutcome, error) {
	claimed, err := s.d.Store.ClaimText(ctx, d)
	if err != nil {
		return nil, err
	}
	if !claimed {
		r.detail("textsSkipped", 1)
		return &TextOutcome{State: TextSkipped}, nil
	}
	res, err := s.d.SMS.SendWorkoutReminder(ctx, c.PhoneNumber, smsName(c.Name), reminderWorkoutType)
	o := TextOutcome{State: TextSent, Status: string(res.Status), LogID: res.LogID}
	switch {
	case err == nil:
	case res.LogID == "":
		o.State = TextRefused // refused before Twilio: a bad number, a country or a limit
	case res.Status == sms.StatusUnknown:
		o.State = TextUnknown
	default:
		o.State = TextFailed
	}
	r.detail("texts"+strings.ToUpper(o.State[:1])+o.State[1:], 1)
	if err != nil {
		o.Error = string(commserver.ErrorCode(err)) + ": " + commserver.ErrorMessage(err)
		s.log.Warn("job: text not sent; the in-app notification was", "job", r.job, "user", d.UserID,
			"state", o.State, "sms_log", o.LogID, "err", err)
	}
	if err := s.d.Store.SettleText(ctx, d, o); err != nil {
		s.log.Warn("job: text outcome not recorded", "job", r.job, "user", d.UserID, "err", err)
	}
	return &o, nil
}

// smsName is the name the reminder text greets: the users document's name,
// cut to what the SMS service accepts, or 회원 ("member") when there is none.
func smsName(name string) string {
	name = strings.TrimSpace(name)
	if name == "" {
		return "회원"
	}
	if utf8.RuneCountInString(name) > 50 {
		name = string([]rune(name)[:50])
	}
	return name
}

// batches calls fn with consecutive slices of at most n items.
func batches[T any](items []T, n int, fn func([]T) error) error {
	for start := 0; start < len(items); start += n {
		if err := fn(items[start:min(start+n, len(items))]); err != nil {
			return err
		}
	}
	return nil
}

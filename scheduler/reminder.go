package scheduler

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/fitmate/commserver/notify"
)

// dailyWorkoutReminder gives every active user the seed's in-app reminder,
// and the seed's reminder text to those whose users document has
// smsNotificationEnabled: true and a phoneNumber. Users are served in
// sorted batches; those served before in this period are skipped.
func (s *Scheduler) dailyWorkoutReminder(ctx context.Context, r *runState) error {
	work := context.WithoutCancel(ctx)
	users, err := s.activeUsers(work, r.slot.Add(-s.o.ActiveWindow))
	if err != nil {
		return fmt.Errorf("active users: %w", err)
	}
	done, err := s.d.Store.Delivered(work, r.job, r.period)
	if err != nil {
		return fmt.Errorf("deliveries: %w", err)
	}
	r.detail("activeUsers", int64(len(users)))
	return batches(users, s.o.BatchSize, func(batch []string) error {
		var contacts map[string]Contact
		for _, u := range batch {
			if ctx.Err() != nil {
				return errStopped
			}
			if done[u] {
				r.skipped()
				continue
			}
			if contacts == nil { // read once per batch, when someone in it is due
				if contacts, err = s.d.Store.Contacts(work, batch); err != nil {
					return fmt.Errorf("contacts: %w", err)
				}
			}
			x := due{period: r.period, recipient: u, userID: u, at: r.slot, input: notify.WorkoutReminderInput(u)}
			if c, ok := contacts[u]; ok && c.SMSEnabled && c.PhoneNumber != "" {
				x.text = &c
			}
			s.deliver(work, r, x)
		}
		return nil
	})
}

// activeUsers returns, sorted, the users active since since by any of the
// configured sources: connected to this server, completed a workout (a
// workout_completed notification), or lastActiveAt in users.
func (s *Scheduler) activeUsers(ctx context.Context, since time.Time) ([]string, error) {
	seen := map[string]bool{}
	for _, src := range s.o.ActiveSources {
		var ids []string
		var err error
		switch src {
		case SourceConnections:
			ids, err = s.d.Store.ConnectedSince(ctx, since)
		case SourceWorkouts:
			ids, err = s.d.Store.WorkoutUsersSince(ctx, since)
		case SourceUsers:
			ids, err = s.d.Store.UsersActiveSince(ctx, since)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		for _, id := range ids {
			if id != "" {
				seen[id] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	slices.Sort(out)
	return out, nil
}

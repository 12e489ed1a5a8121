package scheduler

import (
	"context"
	"fmt"
	"time"
)

// Ledger retention: deliveries and runs older are pruned by cleanup. It is
// longer than any period a delivery key names (a month), so a record is
// never pruned while its period can still run.
const ledgerRetention = 45 * 24 * time.Hour

// cleanup deletes expired notifications (the embedded store has no TTL
// monitor: this job is what removes them there) and read notifications
// older than ReadNotificationRetention; moves chat messages older than
// ChatArchiveAfter to chatmessages_archive in batches (copy, acknowledged,
// then delete: a run stopped between the two leaves messages in both
// places only until the next run, which copies again under the same _id and
// deletes); and prunes the scheduler's own records. Every step is
// idempotent: a second run changes nothing.
func (s *Scheduler) cleanup(ctx context.Context, r *runState) error {
	work := context.WithoutCancel(ctx)
	var removed int64 // documents deleted or archived: the run's "sent"
	defer func() { r.add(removed, 0, 0) }()
	n, err := s.d.Notify.DeleteExpired(work)
	removed += n
	r.detail("expiredNotificationsDeleted", n)
	if err != nil {
		return fmt.Errorf("expired notifications: %w", err)
	}
	n, err = s.d.Notify.DeleteOldRead(work, r.now.Add(-s.o.ReadNotificationRetention))
	removed += n
	r.detail("readNotificationsDeleted", n)
	if err != nil {
		return fmt.Errorf("read notifications: %w", err)
	}

	cutoff := r.now.Add(-s.o.ChatArchiveAfter)
	for {
		if ctx.Err() != nil {
			return errStopped
		}
		copied, err := s.d.Store.CopyOldMessages(work, cutoff, s.o.BatchSize)
		if err != nil {
			return fmt.Errorf("archiving chat messages: %w", err)
		}
		if len(copied) == 0 {
			break
		}
		deleted, err := s.d.Store.DeleteArchivedMessages(work, copied)
		removed += deleted
		r.detail("messagesArchived", deleted)
		if err != nil {
			return fmt.Errorf("archiving chat messages: %w", err)
		}
		if deleted == 0 { // every one changed since its copy: the next run copies them again
			break
		}
	}

	n, err = s.d.Store.PruneLedger(work, r.now.Add(-ledgerRetention))
	r.detail("ledgerRecordsPruned", n)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	n, err = s.d.Store.PruneConnections(work, r.now.Add(-max(s.o.ActiveWindow, ledgerRetention)))
	r.detail("connectionsPruned", n)
	if err != nil {
		return fmt.Errorf("connections: %w", err)
	}
	return nil
}

package scheduler_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fitmate/commserver/chat"
	"github.com/fitmate/commserver/notify"
	"github.com/fitmate/commserver/scheduler"
	"github.com/fitmate/commserver/store"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// dyingArchive dies (panics) the first time it is to delete what it copied.
type dyingArchive struct {
	*store.DB
	died bool
}

func (d *dyingArchive) DeleteArchivedMessages(ctx context.Context, ms []scheduler.ArchivedMessage) (int64, error) {
	if !d.died {
		d.died = true
		panic("killed between copy and delete")
	}
	return d.DB.DeleteArchivedMessages(ctx, ms)
}

func idsOf(docs []bson.M) []string {
	var out []string
	for _, d := range docs {
		out = append(out, d["_id"].(bson.ObjectID).Hex())
	}
	slices.Sort(out)
	return out
}

// Cleanup removes exactly the expired and the old read notifications and
// archives exactly the old messages; a run killed between copy and delete
// loses nothing and leaves nothing in both places after the next run; a
// further run changes nothing.
func TestCleanupRemovesAndArchivesExactly(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	day := 24 * time.Hour
	u := oid(1)
	ptr := func(t time.Time) *time.Time { return &t }
	seed := []struct {
		keep bool
		n    notify.Notification
	}{
		{false, notify.Notification{IsRead: true, ReadAt: ptr(now.Add(-30 * day)), CreatedAt: now.Add(-31 * day)}}, // read, old
		{true, notify.Notification{IsRead: true, ReadAt: ptr(now.Add(-day)), CreatedAt: now.Add(-29 * day)}},       // read, recent
		{true, notify.Notification{CreatedAt: now.Add(-40 * day)}},                                                 // unread, old
		{false, notify.Notification{CreatedAt: now.Add(-2 * day), ExpiresAt: ptr(now.Add(-time.Hour))}},            // expired
		{true, notify.Notification{IsRead: true, CreatedAt: now.Add(-day), ExpiresAt: ptr(now.Add(day))}},          // not yet
	}
	var keepNotes []string
	for i, s := range seed {
		n := s.n
		n.UserID, n.Title, n.Message, n.Type, n.Priority, n.UpdatedAt = u, fmt.Sprint("n", i), "m", notify.TypeSystem, notify.PriorityNormal, n.CreatedAt
		stored, err := w.db.InsertNotifications(ctx, []notify.Notification{n})
		if err != nil {
			t.Fatal(err)
		}
		if s.keep {
			keepNotes = append(keepNotes, stored[0].ID)
		}
	}
	var old, recent []string
	for i := range 7 {
		ts := now.Add(-95*day + time.Duration(i)*time.Minute)
		if i >= 5 {
			ts = now.Add(-85 * day)
		}
		done := make(chan struct{})
		w.db.InsertMessage(ctx, chat.Message{ChatRoomID: "room-1", SenderID: u, Text: fmt.Sprint("m", i), Type: chat.TypeText,
			Timestamp: ts, CreatedAt: ts, UpdatedAt: ts}, func(m chat.Message, _ bool, err error) {
			if err != nil {
				t.Error(err)
			} else if i < 5 {
				old = append(old, m.ID)
			} else {
				recent = append(recent, m.ID)
			}
			close(done)
		})
		<-done
	}
	slices.Sort(old)
	slices.Sort(recent)

	dying := &dyingArchive{DB: w.db}
	pod := w.instance("pod-a", setup{store: dying})
	if r, err := pod.RunNow(ctx, scheduler.JobCleanup); err == nil || r.State != scheduler.StatePanic {
		t.Fatalf("killed run: %+v, %v", r, err)
	}
	pod = w.instance("pod-b", setup{})
	r, err := pod.RunNow(ctx, scheduler.JobCleanup)
	if err != nil || r.Counts.Details["messagesArchived"] != 5 {
		t.Fatalf("next run: %+v, %v; want the 5 old messages archived", r.Counts, err)
	}
	r, err = pod.RunNow(ctx, scheduler.JobCleanup)
	if err != nil || r.Counts.Sent != 0 || r.Counts.Details["messagesArchived"] != 0 || r.Counts.Details["readNotificationsDeleted"] != 0 ||
		r.Counts.Details["expiredNotificationsDeleted"] != 0 {
		t.Fatalf("a further run changed something: %+v, %v", r.Counts, err)
	}

	slices.Sort(keepNotes)
	if got := idsOf(w.find("notifications", bson.M{})); !slices.Equal(got, keepNotes) {
		t.Errorf("notifications left %v, want %v", got, keepNotes)
	}
	if got := idsOf(w.find("chatmessages", bson.M{})); !slices.Equal(got, recent) {
		t.Errorf("chatmessages left %v, want %v", got, recent)
	}
	archived := w.find("chatmessages_archive", bson.M{})
	if got := idsOf(archived); !slices.Equal(got, old) {
		t.Errorf("archive holds %v, want %v", got, old)
	}
	for _, doc := range archived {
		if doc["chatRoomId"] != "room-1" || doc["senderId"] == nil || doc["timestamp"] == nil || doc["message"] == nil {
			t.Errorf("archived message lost fields: %v", doc)
		}
	}
}

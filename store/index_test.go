package store

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/chat"
	"github.com/fitmate/commserver/notify"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// The embedded index must answer exactly what the documents answer. These
// tests change the documents through the store in every way it knows,
// concurrently, and compare each answer of the index with the same question
// asked of the documents (withoutIndex), also across restarts, clean and not.

// openAt opens the embedded store in dir; the caller closes it.
func openAt(t *testing.T, dir string) *DB {
	t.Helper()
	d, err := Open(context.Background(), Options{DataDir: dir, Timeout: 10 * time.Second},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if d.index == nil {
		t.Fatal("the embedded store has no index")
	}
	return d
}

// sameUnread compares the index's unread counts with the documents'.
func sameUnread(t *testing.T, d *DB, users []string, now time.Time) {
	t.Helper()
	ctx := context.Background()
	got, err := d.CountUnread(ctx, users, now)
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]int64
	withoutIndex(t, d, func() { want, err = d.CountUnread(ctx, users, now) })
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("unread counts from the index %v, from the documents %v", got, want)
	}
}

// sameHistory compares every read of the room through the index with the documents'.
func sameHistory(t *testing.T, d *DB, room string) {
	t.Helper()
	ctx := context.Background()
	type answer struct {
		Recent []chat.Message
		Pages  [][]chat.Message
		Totals []int64
		Before [][]chat.Message
		More   []bool
		After  [][]chat.Message
	}
	ask := func() (a answer) {
		var err error
		if a.Recent, err = d.RecentMessages(ctx, room, chat.HistoryLimit); err != nil {
			t.Fatal(err)
		}
		for _, pl := range [][2]int{{1, 20}, {2, 20}, {3, 20}, {1, 100}, {2, 50}, {7, 30}} {
			page, total, err := d.MessagesPage(ctx, room, pl[0], pl[1])
			if err != nil {
				t.Fatal(err)
			}
			a.Pages, a.Totals = append(a.Pages, page), append(a.Totals, total)
		}
		for _, i := range []int{0, 10, 49, len(a.Recent) - 1} {
			if i < 0 || i >= len(a.Recent) {
				continue
			}
			before, more, err := d.MessagesBefore(ctx, room, a.Recent[i].ID, 20)
			if err != nil {
				t.Fatal(err)
			}
			after, err := d.MessagesAfter(ctx, room, a.Recent[i].ID, 100)
			if err != nil {
				t.Fatal(err)
			}
			a.Before, a.More, a.After = append(a.Before, before), append(a.More, more), append(a.After, after)
		}
		return a
	}
	got := ask()
	var want answer
	withoutIndex(t, d, func() { want = ask() })
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("room %s: the index answers\n%+v\nthe documents\n%+v", room, got, want)
	}
}

func unreadNotification(user string, expires *time.Time) notify.Notification {
	now := time.Now().UTC()
	return notify.Notification{UserID: user, Title: "t", Message: "m", Type: notify.TypeSystem,
		Priority: notify.PriorityNormal, CreatedAt: now, UpdatedAt: now, ExpiresAt: expires}
}

// Creates (one and many), reads, read-all, deletes and expiry, several at
// once for the same users, leave the index's counts equal to the documents'
// at every step, after a clean restart, and after an unclean one.
func TestUnreadIndexAgreesWithTheDocuments(t *testing.T) {
	dir := t.TempDir()
	d := openAt(t, dir)
	ctx := context.Background()
	users := []string{"65f000000000000000000001", "plain-user", "65f000000000000000000003"}
	soon := time.Now().Add(700 * time.Millisecond)
	rng := rand.New(rand.NewPCG(1, 2))

	var mu sync.Mutex
	var created []notify.Notification
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 15 {
				u := users[(w+i)%len(users)]
				var ns []notify.Notification
				switch i % 4 {
				case 0: // a batch for several users
					ns = []notify.Notification{unreadNotification(u, nil), unreadNotification(users[0], nil)}
				case 1: // expiring soon
					ns = []notify.Notification{unreadNotification(u, &soon)}
				default:
					ns = []notify.Notification{unreadNotification(u, nil)}
				}
				stored, err := d.InsertNotifications(ctx, ns)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				created = append(created, stored...)
				mu.Unlock()
			}
		}()
	}
	wg.Add(1)
	go func() { // read-all, concurrently with the creates
		defer wg.Done()
		for range 3 {
			if _, err := d.MarkAllNotificationsRead(ctx, users[0], time.Now()); err != nil {
				t.Error(err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	wg.Wait()
	sameUnread(t, d, users, time.Now())

	// One by one: read, read again, delete a read one, delete an unread one, someone else's.
	rng.Shuffle(len(created), func(i, j int) { created[i], created[j] = created[j], created[i] })
	for i, n := range created[:20] {
		var err error
		switch i % 5 {
		case 0, 1:
			_, _, err = d.MarkNotificationRead(ctx, n.UserID, n.ID, time.Now())
		case 2:
			_, _, err = d.MarkNotificationRead(ctx, n.UserID, n.ID, time.Now())
			if err == nil {
				_, err = d.DeleteNotification(ctx, n.UserID, n.ID, time.Now())
			}
		case 3:
			_, err = d.DeleteNotification(ctx, n.UserID, n.ID, time.Now())
		case 4:
			if _, _, err = d.MarkNotificationRead(ctx, "intruder", n.ID, time.Now()); err == nil {
				t.Fatal("another user marked a notification read")
			}
			err = nil
		}
		if err != nil && !isNotFound(err) {
			t.Fatal(err)
		}
	}
	sameUnread(t, d, users, time.Now())
	time.Sleep(time.Until(soon) + 10*time.Millisecond)
	sameUnread(t, d, users, time.Now()) // expired ones are gone from both
	if _, _, err := d.DeleteExpiredNotifications(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	sameUnread(t, d, users, time.Now().Add(-time.Hour)) // and stay gone for an earlier clock

	// A clean restart trusts the index as written back.
	before, _ := d.CountUnread(ctx, users, time.Now())
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	d = openAt(t, dir)
	if got, _ := d.CountUnread(ctx, users, time.Now()); !reflect.DeepEqual(got, before) {
		t.Fatalf("after a clean restart %v, before %v", got, before)
	}
	sameUnread(t, d, users, time.Now())

	// A change behind the index's back (a crash between the write and the
	// index's write-back) is caught by the unclean state at the next start.
	if _, err := d.db.Collection(colNotifications).InsertOne(ctx, newNotificationDoc(unreadNotification(users[1], nil))); err != nil {
		t.Fatal(err)
	}
	d.index.distrust("test: simulated crash") // what a killed process leaves: the state is not clean
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	d = openAt(t, dir)
	defer d.Close(ctx)
	sameUnread(t, d, users, time.Now())
	if got, _ := d.CountUnread(ctx, users, time.Now()); got[users[1]] != before[users[1]]+1 {
		t.Fatalf("after the rebuild %s has %d unread, want %d", users[1], got[users[1]], before[users[1]]+1)
	}
}

func isNotFound(err error) bool {
	return commserver.ErrorCode(err) == commserver.CodeNotFound
}

// A write with no answer makes its user stale: the user's count comes from
// the documents (here: right although the index missed the change), and the
// next start rebuilds the index.
func TestStaleUserIsCountedFromTheDocuments(t *testing.T) {
	dir := t.TempDir()
	d := openAt(t, dir)
	ctx := context.Background()
	if _, err := d.InsertNotifications(ctx, []notify.Notification{unreadNotification("u1", nil)}); err != nil {
		t.Fatal(err)
	}
	// The index misses a notification, and learns it may have.
	if _, err := d.db.Collection(colNotifications).InsertOne(ctx, newNotificationDoc(unreadNotification("u1", nil))); err != nil {
		t.Fatal(err)
	}
	d.index.markStale("user:", "u1")
	if got, _ := d.CountUnread(ctx, []string{"u1"}, time.Now()); got["u1"] != 2 {
		t.Fatalf("stale user counted %d, want 2 from the documents", got["u1"])
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	d = openAt(t, dir)
	defer d.Close(ctx)
	if d.index.isStale("user:u1") {
		t.Fatal("still stale after a restart")
	}
	if got, _ := d.CountUnread(ctx, []string{"u1"}, time.Now()); got["u1"] != 2 {
		t.Fatalf("after the rebuild %d, want 2", got["u1"])
	}
}

// History through the index (newest 50, pages, cursors both ways) equals
// the documents' answers, with deletions, reads and more messages than the
// index copies, concurrently from several senders, before and after
// restarts.
func TestRoomTailsAgreeWithTheDocuments(t *testing.T) {
	dir := t.TempDir()
	d := openAt(t, dir)
	ctx := context.Background()
	rooms := map[string]int{"small": 12, "exact": tailSize, "big": tailSize + 70}
	var wg sync.WaitGroup
	for room, n := range rooms {
		for sender := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := sender; i < n; i += 3 {
					m := testMessage(room, fmt.Sprintf("%s %d", room, i))
					m.SenderID = []string{"aaaaaaaaaaaaaaaaaaaaaaa1", "bbbbbbbbbbbbbbbbbbbbbbb2", "42"}[sender]
					if i%5 == 0 {
						m.ClientMessageID = fmt.Sprintf("c-%d", i)
					}
					if o := <-insertAsync(context.Background(), d, m); o.err != nil {
						t.Error(o.err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	for room := range rooms {
		sameHistory(t, d, room)
	}
	// Deletions (some twice) and reads.
	recent, err := d.RecentMessages(ctx, "big", 50)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range recent {
		if i%3 == 0 {
			if _, err := d.SoftDeleteMessage(ctx, m.ID); err != nil {
				t.Fatal(err)
			}
		}
		if i%6 == 0 {
			if _, err := d.SoftDeleteMessage(ctx, m.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := d.MarkRoomRead(ctx, "big", "bbbbbbbbbbbbbbbbbbbbbbb2"); err != nil {
		t.Fatal(err)
	}
	small, _ := d.RecentMessages(ctx, "small", 50)
	for _, m := range small[:5] {
		if _, err := d.SoftDeleteMessage(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
	}
	for room := range rooms {
		sameHistory(t, d, room)
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	d = openAt(t, dir) // trusted as written back
	for room := range rooms {
		sameHistory(t, d, room)
	}
	d.index.distrust("test: simulated crash")
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	d = openAt(t, dir) // rebuilt
	defer d.Close(ctx)
	for room := range rooms {
		sameHistory(t, d, room)
	}
}

// A retried clientMessageId finds the original through the index: right
// after it was stored (the key is still in memory), and after a restart.
func TestRetriedClientKeyFindsTheOriginal(t *testing.T) {
	dir := t.TempDir()
	d := openAt(t, dir)
	ctx := context.Background()
	m := testMessage("room-1", "once")
	m.ClientMessageID = "c-1"
	first := <-insertAsync(context.Background(), d, m)
	if first.err != nil || !first.created {
		t.Fatalf("first: %+v", first)
	}
	retry := <-insertAsync(context.Background(), d, m)
	if retry.err != nil || retry.created || retry.m.ID != first.m.ID {
		t.Fatalf("retry: %+v, want the original %s", retry, first.m.ID)
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	d = openAt(t, dir)
	defer d.Close(ctx)
	var n int64
	n, _ = d.db.Collection(colKeys).CountDocuments(ctx, bson.M{"_id": first.m.ChatRoomID + "/c-1/" + first.m.SenderID})
	if n != 1 {
		t.Fatal("the client key was not written back")
	}
	again := <-insertAsync(context.Background(), d, m)
	if again.err != nil || again.created || again.m.ID != first.m.ID {
		t.Fatalf("retry after a restart: %+v, want the original %s", again, first.m.ID)
	}
}

// The scheduler's writes keep the index right: a notification created once
// (and its retry), and old messages moved to the archive, one of them
// changed between the copy and the delete (so kept).
func TestIndexFollowsTheSchedulersWrites(t *testing.T) {
	d := openAt(t, t.TempDir())
	defer d.Close(context.Background())
	ctx := context.Background()
	n := unreadNotification("u1", nil)
	n.ID = bson.NewObjectID().Hex()
	for range 2 {
		if _, _, err := d.InsertNotificationOnce(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	sameUnread(t, d, []string{"u1"}, time.Now())
	if got, _ := d.CountUnread(ctx, []string{"u1"}, time.Now()); got["u1"] != 1 {
		t.Fatalf("created once, counted %d", got["u1"])
	}

	old := time.Now().UTC().Add(-400 * 24 * time.Hour).Truncate(time.Millisecond)
	for i := range 12 {
		m := testMessage("archived", fmt.Sprintf("m%d", i))
		if i < 8 {
			m.Timestamp = old.Add(time.Duration(i) * time.Minute)
		}
		if o := <-insertAsync(ctx, d, m); o.err != nil {
			t.Fatal(o.err)
		}
	}
	recent, _ := d.RecentMessages(ctx, "archived", 50)
	if _, err := d.SoftDeleteMessage(ctx, recent[len(recent)-1].ID); err != nil { // the oldest: counted as deleted
		t.Fatal(err)
	}
	copied, err := d.CopyOldMessages(ctx, old.Add(time.Hour), 100)
	if err != nil || len(copied) != 8 {
		t.Fatalf("copied %d (%v), want 8", len(copied), err)
	}
	if _, err := d.SoftDeleteMessage(ctx, recent[len(recent)-2].ID); err != nil { // changed after the copy: kept
		t.Fatal(err)
	}
	if n, err := d.DeleteArchivedMessages(ctx, copied); err != nil || n != 7 {
		t.Fatalf("deleted %d (%v), want 7", n, err)
	}
	sameHistory(t, d, "archived")
	if _, total, err := d.MessagesPage(ctx, "archived", 1, 20); err != nil || total != 4 {
		t.Fatalf("%d left (%v), want the 4 recent ones", total, err)
	}
}

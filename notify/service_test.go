package notify_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/chat"
	"github.com/fitmate/commserver/notify"
	"github.com/fitmate/commserver/presence/presencetest"
	"github.com/fitmate/commserver/store"
	"github.com/fitmate/commserver/store/storetest"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// These tests run the service over the real store (the embedded
// MongoDB-compatible one, in process) and real presence. The publisher is a
// recorder at the seam this package owns; test/notify_test.go covers the same
// paths through the real hub and the real socket.io-client.

const (
	alice = "aaaaaaaaaaaaaaaaaaaaaaa1"
	bob   = "bbbbbbbbbbbbbbbbbbbbbbb2"
	carol = "ccccccccccccccccccccccc3"
	dave  = "ddddddddddddddddddddddd4"
	erin  = "eeeeeeeeeeeeeeeeeeeeeee5"
)

// published is one event the service published.
type published struct {
	user, event string
	payload     any
}

// recorder is a notify.Publisher that keeps what was published.
type recorder struct {
	mu     sync.Mutex
	events []published
}

func (r *recorder) PublishUser(_ context.Context, userID, event string, payload any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, published{userID, event, payload})
	return nil
}

func (r *recorder) of(user, event string) []any {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []any
	for _, e := range r.events {
		if e.user == user && e.event == event {
			out = append(out, e.payload)
		}
	}
	return out
}

// lastCount is the last unreadNotificationCount pushed to user, or -1.
func (r *recorder) lastCount(user string) int64 {
	c := r.of(user, notify.EventUnreadCount)
	if len(c) == 0 {
		return -1
	}
	return c[len(c)-1].(int64)
}

// clock is a settable clock, or the real one once real is set.
type clock struct {
	mu   sync.Mutex
	now  time.Time
	real bool
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.real {
		return time.Now()
	}
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type env struct {
	svc      *notify.Service
	db       *store.DB
	pub      *recorder
	presence *presencetest.Online
	sms      *recordingChannel
	clock    *clock
	stop     func() // stops Run and waits for the background work
}

// newEnv starts the embedded store in dir (a fresh one when dir is "") and
// the service over it, with its Run loop.
func newEnv(t *testing.T, dir string) *env {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{DataDir: dir, Timeout: 10 * time.Second}, log)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{db: db, pub: &recorder{}, presence: presencetest.NewOnline(), sms: &recordingChannel{},
		clock: &clock{now: time.Now().UTC().Truncate(time.Millisecond)}}
	e.svc = notify.New(db, e.pub, e.presence, e.sms, notify.Options{Now: e.clock.Now}, log)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); e.svc.Run(runCtx) }()
	var once sync.Once
	e.stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(func() {
		e.stop()
		if err := db.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return e
}

// eventually retries f until it returns nil or 10s pass.
func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// countIs waits until the last count pushed to user is want.
func (e *env) countIs(t *testing.T, user string, want int64) {
	t.Helper()
	eventually(t, func() error {
		if got := e.pub.lastCount(user); got != want {
			return fmt.Errorf("last unreadNotificationCount pushed to %s = %d, want %d", user, got, want)
		}
		return nil
	})
}

func (e *env) create(t *testing.T, in notify.CreateInput) notify.Notification {
	t.Helper()
	if in.Type == "" {
		in.Type = notify.TypeSystem
	}
	if in.Message == "" {
		in.Message = "body"
	}
	n, err := e.svc.Create(context.Background(), in)
	if err != nil {
		t.Fatalf("create %+v: %v", in, err)
	}
	return n
}

func TestCreateStoresPushesAndCounts(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	n := e.create(t, notify.CreateInput{UserID: alice, Title: "hello", Message: "world", Type: notify.TypeCustom,
		Data: map[string]any{"k": "v"}})
	if len(n.ID) != 24 || n.UserID != alice || n.IsRead || n.Priority != notify.PriorityNormal || n.CreatedAt.IsZero() {
		t.Fatalf("created %+v", n)
	}
	got := e.pub.of(alice, notify.EventNewNotification)
	if len(got) != 1 || got[0].(notify.Notification).ID != n.ID {
		t.Fatalf("newNotification pushed to alice: %v", got)
	}
	e.countIs(t, alice, 1)
	if c, err := e.svc.UnreadCount(ctx, alice); err != nil || c != 1 {
		t.Fatalf("UnreadCount = %d, %v", c, err)
	}
	if len(e.pub.of(bob, notify.EventNewNotification)) != 0 {
		t.Fatal("bob heard alice's notification")
	}
	page, err := e.svc.List(ctx, alice, 1, 20)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Notifications) != 1 || page.Notifications[0].ID != n.ID || page.Notifications[0].Data["k"] != "v" {
		t.Fatalf("list = %+v", page)
	}
}

func TestListIsNewestFirstWithPagingAndCounts(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	var ids []string
	for i := range 5 {
		ids = append(ids, e.create(t, notify.CreateInput{UserID: alice, Title: fmt.Sprint("n", i)}).ID)
		e.clock.advance(time.Second)
	}
	e.create(t, notify.CreateInput{UserID: bob, Title: "bob's"})
	for _, id := range ids[:2] {
		if _, err := e.svc.MarkRead(ctx, alice, id); err != nil {
			t.Fatal(err)
		}
	}
	p1, err := e.svc.List(ctx, alice, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if p1.TotalCount != 5 || p1.UnreadCount != 3 {
		t.Errorf("totals = %d, %d; want 5, 3", p1.TotalCount, p1.UnreadCount)
	}
	if len(p1.Notifications) != 2 || p1.Notifications[0].ID != ids[4] || p1.Notifications[1].ID != ids[3] {
		t.Errorf("page 1 = %v, want %v", titles(p1.Notifications), []string{"n4", "n3"})
	}
	p3, _ := e.svc.List(ctx, alice, 3, 2)
	if len(p3.Notifications) != 1 || p3.Notifications[0].ID != ids[0] || !p3.Notifications[0].IsRead {
		t.Errorf("page 3 = %+v", p3.Notifications)
	}
	p4, _ := e.svc.List(ctx, alice, 4, 2)
	if p4.Notifications == nil || len(p4.Notifications) != 0 {
		t.Errorf("page 4 = %#v, want an empty list", p4.Notifications)
	}
}

func titles(ns []notify.Notification) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Title
	}
	return out
}

func TestMarkReadAndDeleteOnlyOwnNotifications(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	n := e.create(t, notify.CreateInput{UserID: alice, Title: "private"})
	e.countIs(t, alice, 1)

	if _, err := e.svc.MarkRead(ctx, bob, n.ID); !errors.Is(err, commserver.ErrNotFound) {
		t.Errorf("bob marks alice's notification: %v, want not found", err)
	}
	if _, err := e.svc.Delete(ctx, bob, n.ID); !errors.Is(err, commserver.ErrNotFound) {
		t.Errorf("bob deletes alice's notification: %v, want not found", err)
	}
	if c, _ := e.svc.UnreadCount(ctx, alice); c != 1 {
		t.Fatalf("alice's unread count after bob's attempts = %d", c)
	}
	if _, err := e.svc.MarkRead(ctx, alice, bson.NewObjectID().Hex()); !errors.Is(err, commserver.ErrNotFound) {
		t.Errorf("mark an unknown id: %v", err)
	}

	e.clock.advance(time.Minute)
	read, err := e.svc.MarkRead(ctx, alice, n.ID)
	if err != nil || !read.IsRead || read.ReadAt == nil || !read.ReadAt.Equal(e.clock.Now()) || !read.UpdatedAt.Equal(e.clock.Now()) {
		t.Fatalf("mark read = %+v, %v", read, err)
	}
	e.countIs(t, alice, 0)
	e.clock.advance(time.Minute)
	again, err := e.svc.MarkRead(ctx, alice, n.ID)
	if err != nil || !again.ReadAt.Equal(*read.ReadAt) {
		t.Fatalf("marking twice changed readAt: %+v, %v", again, err)
	}

	if _, err := e.svc.Delete(ctx, alice, n.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Delete(ctx, alice, n.ID); !errors.Is(err, commserver.ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}
}

func TestEveryChangeToTheUnreadSetPushesTheRecount(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	a := e.create(t, notify.CreateInput{UserID: alice, Title: "a"})
	b := e.create(t, notify.CreateInput{UserID: alice, Title: "b"})
	e.create(t, notify.CreateInput{UserID: alice, Title: "c"})
	e.countIs(t, alice, 3)
	if _, err := e.svc.Delete(ctx, alice, a.ID); err != nil {
		t.Fatal(err)
	}
	e.countIs(t, alice, 2)
	if _, err := e.svc.MarkRead(ctx, alice, b.ID); err != nil {
		t.Fatal(err)
	}
	e.countIs(t, alice, 1)
	n, err := e.svc.MarkAllRead(ctx, alice)
	if err != nil || n != 1 {
		t.Fatalf("mark all read = %d, %v", n, err)
	}
	e.countIs(t, alice, 0)
	pushes := len(e.pub.of(alice, notify.EventUnreadCount))
	// Deleting a read notification leaves the unread set as it was: no push.
	if _, err := e.svc.Delete(ctx, alice, b.ID); err != nil {
		t.Fatal(err)
	}
	e.stop() // waits for background pushes
	if got := len(e.pub.of(alice, notify.EventUnreadCount)); got != pushes {
		t.Errorf("deleting a read notification pushed a count (%d pushes, was %d)", got, pushes)
	}
}

func TestConcurrentChangesEndOnTheStoredCount(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.svc.Create(ctx, notify.CreateInput{UserID: alice, Title: fmt.Sprint(i), Message: "m", Type: notify.TypeSystem}); err != nil {
				t.Error(err)
			}
			if i%10 == 9 {
				if _, err := e.svc.MarkAllRead(ctx, alice); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	e.stop()
	counts, err := e.db.CountUnread(ctx, []string{alice}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := counts[alice]
	pushes := e.pub.of(alice, notify.EventUnreadCount)
	if got := e.pub.lastCount(alice); got != want {
		t.Fatalf("last count pushed = %d, the store says %d", got, want)
	}
	if len(pushes) >= 44 {
		t.Logf("no coalescing: %d pushes for 44 changes", len(pushes))
	}
}

func TestExpiredNotificationsAreGone(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	soon := e.clock.Now().Add(time.Hour)
	gone := e.create(t, notify.CreateInput{UserID: alice, Title: "expires", ExpiresAt: &soon})
	kept := e.create(t, notify.CreateInput{UserID: alice, Title: "stays"})
	later := e.clock.Now().Add(48 * time.Hour)
	e.create(t, notify.CreateInput{UserID: alice, Title: "expires later", ExpiresAt: &later})
	e.countIs(t, alice, 3)

	e.clock.advance(time.Hour) // expiresAt is not after now: gone
	page, err := e.svc.List(ctx, alice, 1, 20)
	if err != nil {
		t.Fatal(err)
	}
	if page.TotalCount != 2 || page.UnreadCount != 2 || len(page.Notifications) != 2 {
		t.Fatalf("list after expiry = %d, %d, %v", page.TotalCount, page.UnreadCount, titles(page.Notifications))
	}
	for _, n := range page.Notifications {
		if n.ID == gone.ID {
			t.Fatal("expired notification listed")
		}
	}
	if c, _ := e.svc.UnreadCount(ctx, alice); c != 2 {
		t.Errorf("unread count = %d, want 2", c)
	}
	if _, err := e.svc.MarkRead(ctx, alice, gone.ID); !errors.Is(err, commserver.ErrNotFound) {
		t.Errorf("mark an expired notification: %v", err)
	}
	if _, err := e.svc.Delete(ctx, alice, gone.ID); !errors.Is(err, commserver.ErrNotFound) {
		t.Errorf("delete an expired notification: %v", err)
	}
	if n, err := e.svc.MarkAllRead(ctx, alice); err != nil || n != 2 {
		t.Errorf("mark all read touched %d (want 2, not the expired one): %v", n, err)
	}

	// The cleanup removes it from the store.
	e.countIs(t, alice, 0)
	e.pub.mu.Lock()
	e.pub.events = nil
	e.pub.mu.Unlock()
	n, err := e.svc.DeleteExpired(ctx)
	if err != nil || n != 1 {
		t.Fatalf("DeleteExpired = %d, %v", n, err)
	}
	e.countIs(t, alice, 0) // alice lost an unread one: her sockets are told
	if n, _ := e.svc.DeleteExpired(ctx); n != 0 {
		t.Errorf("second DeleteExpired = %d", n)
	}

	// Old read ones go too, unread and recent ones stay.
	unreadOld := e.create(t, notify.CreateInput{UserID: alice, Title: "unread, soon old"})
	e.clock.advance(31 * 24 * time.Hour)
	n, err = e.svc.DeleteOldRead(ctx, e.clock.Now().Add(-30*24*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("DeleteOldRead = %d, %v (want the two read ones)", n, err)
	}
	if _, err := e.svc.Delete(ctx, alice, kept.ID); !errors.Is(err, commserver.ErrNotFound) {
		t.Errorf("the old read notification is still there: %v", err)
	}
	if _, err := e.svc.MarkRead(ctx, alice, unreadOld.ID); err != nil {
		t.Errorf("the old unread notification was deleted: %v", err)
	}
}

func TestExpiryPushesTheLowerCount(t *testing.T) {
	e := newEnv(t, "")
	e.clock.mu.Lock()
	e.clock.real = true // the watcher waits on the real clock
	e.clock.mu.Unlock()
	at := time.Now().Add(300 * time.Millisecond)
	e.create(t, notify.CreateInput{UserID: alice, Title: "short-lived", ExpiresAt: &at})
	e.create(t, notify.CreateInput{UserID: alice, Title: "stays"})
	e.countIs(t, alice, 2)
	e.countIs(t, alice, 1)
}

func TestHelpersUseTheSeedsTexts(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	w, err := e.svc.WorkoutCompleted(ctx, alice, map[string]any{"exerciseName": "스쿼트", "duration": float64(30),
		"calories": 245.5, "sets": float64(3)})
	if err != nil {
		t.Fatal(err)
	}
	if w.Title != "운동 완료! 🎉" || w.Message != "스쿼트 운동을 완료했습니다. 총 30분 동안 245.5칼로리를 소모했어요!" ||
		w.Type != notify.TypeWorkoutCompleted {
		t.Errorf("workout completed = %q / %q / %s", w.Title, w.Message, w.Type)
	}
	if w.Data["exerciseName"] != "스쿼트" || fmt.Sprint(w.Data["sets"]) != "3" {
		t.Errorf("workout data = %v (the seed stored the whole record)", w.Data)
	}
	g, err := e.svc.GoalAchieved(ctx, alice, map[string]any{"goalName": "주 3회 운동"})
	if err != nil {
		t.Fatal(err)
	}
	if g.Title != "목표 달성! 🏆" || g.Message != "주 3회 운동 목표를 달성했습니다! 축하드려요!" || g.Type != notify.TypeGoalAchieved {
		t.Errorf("goal achieved = %q / %q / %s", g.Title, g.Message, g.Type)
	}
	r, err := e.svc.WorkoutReminder(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if r.Title != "운동 시간이에요! ⏰" || r.Message != "오늘의 운동을 시작해보세요. 건강한 하루를 만들어가요!" ||
		r.Type != notify.TypeWorkoutReminder || r.Data != nil {
		t.Errorf("workout reminder = %q / %q / %s / %v", r.Title, r.Message, r.Type, r.Data)
	}
	e.countIs(t, alice, 3)
}

func TestChatMessageNotifiesEachOfflineRecipient(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	long := strings.Repeat("가", 150)
	m := chat.Message{ID: bson.NewObjectID().Hex(), ChatRoomID: "room-1", SenderID: alice, Text: long, Type: chat.TypeText}
	if err := e.svc.ChatMessage(ctx, m, []string{bob, carol, alice, bob}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{bob, carol} {
		p, err := e.svc.List(ctx, u, 1, 20)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Notifications) != 1 {
			t.Fatalf("%s has %d notifications, want 1", u, len(p.Notifications))
		}
		n := p.Notifications[0]
		if n.Type != notify.TypeChatMessage || n.IsRead || n.Title == "" {
			t.Errorf("%s: %+v", u, n)
		}
		if r := []rune(n.Message); len(r) != notify.ChatPreviewLength || r[len(r)-1] != '…' {
			t.Errorf("%s: preview of %d characters: %q", u, len(r), n.Message)
		}
		if n.Data["chatRoomId"] != "room-1" || n.Data["messageId"] != m.ID || n.Data["senderId"] != alice {
			t.Errorf("%s: data = %v", u, n.Data)
		}
		e.countIs(t, u, 1)
	}
	if p, _ := e.svc.List(ctx, alice, 1, 20); p.TotalCount != 0 {
		t.Errorf("the sender was notified of her own message")
	}
	short := chat.Message{ID: bson.NewObjectID().Hex(), ChatRoomID: "room-2", SenderID: alice, Text: "hi", Type: chat.TypeText}
	if err := e.svc.ChatMessage(ctx, short, []string{bob}); err != nil {
		t.Fatal(err)
	}
	if p, _ := e.svc.List(ctx, bob, 1, 1); p.Notifications[0].Message != "hi" {
		t.Errorf("short message preview = %q", p.Notifications[0].Message)
	}
}

// A member offline during a flood gets the first message's notification at
// once, then one notification per window standing for the messages counted
// in it (their number, the latest one's preview), per room; the badge is
// recounted once per notification, not once per message.
func TestChatFloodIsCoalescedPerRoom(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	msg := func(room string, i int) chat.Message {
		return chat.Message{ID: bson.NewObjectID().Hex(), ChatRoomID: room, SenderID: alice, Text: fmt.Sprintf("m%d", i), Type: chat.TypeText}
	}
	notified := func(user string) []notify.Notification {
		p, err := e.svc.List(ctx, user, 1, 100)
		if err != nil {
			t.Fatal(err)
		}
		return p.Notifications // newest first
	}
	for i := range 50 {
		if err := e.svc.ChatMessage(ctx, msg("room-1", i), []string{bob, carol}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.svc.ChatMessage(ctx, msg("room-2", 0), []string{bob}); err != nil {
		t.Fatal(err)
	}
	e.countIs(t, bob, 2)
	if ns := notified(bob); len(ns) != 2 || ns[1].Message != "m0" || ns[0].Message != "m0" || ns[0].Data["chatRoomId"] != "room-2" {
		t.Fatalf("bob's notifications during the flood: %+v", ns)
	}

	e.clock.advance(notify.DefaultChatWindow) // the window ends: one summary for the 49 others, per member
	var sum notify.Notification
	eventually(t, func() error {
		ns := notified(bob)
		if len(ns) != 3 {
			return fmt.Errorf("bob has %d notifications, want 3", len(ns))
		}
		sum = ns[0]
		return nil
	})
	if sum.Data["chatRoomId"] != "room-1" || sum.Data["count"] != 49.0 || sum.Message != "새 메시지 49개 · m49" {
		t.Fatalf("summary %+v", sum)
	}
	if ns := notified(carol); len(ns) != 2 || ns[0].Data["count"] != 49.0 {
		t.Fatalf("carol's notifications: %+v", ns)
	}
	e.countIs(t, bob, 3)

	// The flood goes on in the new window; a quiet window then closes.
	for i := 50; i < 60; i++ {
		if err := e.svc.ChatMessage(ctx, msg("room-1", i), []string{bob}); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.advance(notify.DefaultChatWindow)
	eventually(t, func() error {
		if ns := notified(bob); len(ns) != 4 || ns[0].Data["count"] != 10.0 {
			return fmt.Errorf("bob's notifications: %d", len(ns))
		}
		return nil
	})
	e.clock.advance(notify.DefaultChatWindow)
	time.Sleep(1500 * time.Millisecond) // a tick of the summing loop, with nothing to sum
	if err := e.svc.ChatMessage(ctx, msg("room-1", 60), []string{bob}); err != nil {
		t.Fatal(err)
	}
	if ns := notified(bob); len(ns) != 5 || ns[0].Message != "m60" {
		t.Fatalf("after a quiet window the next message is notified at once: %+v", ns[0])
	}
	e.countIs(t, bob, 5)
	if pushes := len(e.pub.of(bob, notify.EventUnreadCount)); pushes > 10 {
		t.Errorf("%d unread counts pushed for 5 notifications and 61 messages", pushes)
	}
}

func TestUrgentNotificationsOfOfflineOptedInUsersGoToTheOfflineChannel(t *testing.T) {
	dir := t.TempDir()
	oid := func(h string) bson.ObjectID { id, _ := bson.ObjectIDFromHex(h); return id }
	err := storetest.Insert(dir, "users",
		bson.M{"_id": oid(alice), "name": "Alice", "phoneNumber": "010-1234-5678", "smsNotificationEnabled": true},
		bson.M{"_id": oid(bob), "name": "Bob", "phoneNumber": "010-2222-3333", "smsNotificationEnabled": false},
		bson.M{"_id": oid(carol), "name": "Carol", "smsNotificationEnabled": true},
		bson.M{"_id": oid(dave), "name": "Dave", "phoneNumber": "010-4444-5555", "smsNotificationEnabled": true},
	)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, dir)
	if _, err := e.presence.Connect(context.Background(), dave, "socket-1"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{alice, bob, carol, dave, erin} {
		e.create(t, notify.CreateInput{UserID: u, Title: "urgent " + u, Priority: notify.PriorityUrgent})
	}
	e.create(t, notify.CreateInput{UserID: alice, Title: "high", Priority: notify.PriorityHigh})
	e.create(t, notify.CreateInput{UserID: alice, Title: "normal", Priority: notify.PriorityNormal})
	e.create(t, notify.CreateInput{UserID: alice, Title: "low", Priority: notify.PriorityLow})
	e.stop() // waits for the hand-offs

	var got []string
	for _, d := range e.sms.Decisions() {
		got = append(got, d.UserID+" "+d.PhoneNumber+" "+d.Title)
		if d.Body != "body" {
			t.Errorf("body = %q", d.Body)
		}
	}
	want := map[string]bool{alice + " 010-1234-5678 urgent " + alice: true, alice + " 010-1234-5678 high": true}
	if len(got) != len(want) {
		t.Fatalf("offline channel got %q, want only alice's urgent and high ones", got)
	}
	for _, g := range got {
		if !want[g] {
			t.Errorf("unexpected offline hand-off %q", g)
		}
	}
}

func TestValidation(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	past := e.clock.Now().Add(-time.Second)
	now := e.clock.Now()
	deep := map[string]any{}
	cur := deep
	for range 20 {
		next := map[string]any{}
		cur["x"] = next
		cur = next
	}
	ok := notify.CreateInput{UserID: alice, Title: "t", Message: "m", Type: notify.TypeSystem}
	with := func(f func(*notify.CreateInput)) notify.CreateInput { in := ok; f(&in); return in }
	cases := []struct {
		name  string
		in    notify.CreateInput
		field string
	}{
		{"no userId", with(func(in *notify.CreateInput) { in.UserID = "" }), "userId"},
		{"userId with a space", with(func(in *notify.CreateInput) { in.UserID = "a b" }), "userId"},
		{"userId too long", with(func(in *notify.CreateInput) { in.UserID = strings.Repeat("a", 129) }), "userId"},
		{"no title", with(func(in *notify.CreateInput) { in.Title = "" }), "title"},
		{"blank title", with(func(in *notify.CreateInput) { in.Title = " \n\t" }), "title"},
		{"title too long", with(func(in *notify.CreateInput) { in.Title = strings.Repeat("가", notify.MaxTitleLength+1) }), "title"},
		{"no message", with(func(in *notify.CreateInput) { in.Message = "" }), "message"},
		{"message too long", with(func(in *notify.CreateInput) { in.Message = strings.Repeat("a", notify.MaxMessageLength+1) }), "message"},
		{"no type", with(func(in *notify.CreateInput) { in.Type = "" }), "type"},
		{"unknown type", with(func(in *notify.CreateInput) { in.Type = "promo" }), "type"},
		{"unknown priority", with(func(in *notify.CreateInput) { in.Priority = "critical" }), "priority"},
		{"data too large", with(func(in *notify.CreateInput) {
			in.Data = map[string]any{"blob": strings.Repeat("x", notify.MaxDataBytes)}
		}), "data"},
		{"data key with $", with(func(in *notify.CreateInput) { in.Data = map[string]any{"$where": "1"} }), "data"},
		{"data key with a dot", with(func(in *notify.CreateInput) {
			in.Data = map[string]any{"a": map[string]any{"b.c": 1}}
		}), "data"},
		{"data nested too deep", with(func(in *notify.CreateInput) { in.Data = deep }), "data"},
		{"expiresAt in the past", with(func(in *notify.CreateInput) { in.ExpiresAt = &past }), "expiresAt"},
		{"expiresAt now", with(func(in *notify.CreateInput) { in.ExpiresAt = &now }), "expiresAt"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.svc.Create(ctx, c.in)
			var ce *commserver.Error
			if !errors.As(err, &ce) || ce.Code != commserver.CodeInvalid || ce.Field != c.field || ce.Message == "" {
				t.Fatalf("err = %v, want INVALID_ARGUMENT on %s", err, c.field)
			}
		})
	}
	for _, typ := range notify.Types {
		for _, pr := range append([]string{""}, notify.Priorities...) {
			in := with(func(in *notify.CreateInput) { in.Type, in.Priority = typ, pr })
			if _, err := e.svc.Create(ctx, in); err != nil {
				t.Errorf("type %s priority %q refused: %v", typ, pr, err)
			}
		}
	}

	helpers := []struct {
		name  string
		call  func() error
		field string
	}{
		{"workout without exerciseName", func() error {
			_, err := e.svc.WorkoutCompleted(ctx, alice, map[string]any{"duration": 1.0, "calories": 1.0})
			return err
		}, "exerciseName"},
		{"workout exerciseName not text", func() error {
			_, err := e.svc.WorkoutCompleted(ctx, alice, map[string]any{"exerciseName": 3.0, "duration": 1.0, "calories": 1.0})
			return err
		}, "exerciseName"},
		{"workout negative duration", func() error {
			_, err := e.svc.WorkoutCompleted(ctx, alice, map[string]any{"exerciseName": "run", "duration": -1.0, "calories": 1.0})
			return err
		}, "duration"},
		{"workout calories as text", func() error {
			_, err := e.svc.WorkoutCompleted(ctx, alice, map[string]any{"exerciseName": "run", "duration": 1.0, "calories": "many"})
			return err
		}, "calories"},
		{"workout without userId", func() error {
			_, err := e.svc.WorkoutCompleted(ctx, "", map[string]any{"exerciseName": "run", "duration": 1.0, "calories": 1.0})
			return err
		}, "userId"},
		{"goal without goalName", func() error { _, err := e.svc.GoalAchieved(ctx, alice, map[string]any{}); return err }, "goalName"},
		{"reminder without userId", func() error { _, err := e.svc.WorkoutReminder(ctx, ""); return err }, "userId"},
		{"page 0", func() error { _, err := e.svc.List(ctx, alice, 0, 20); return err }, "page"},
		{"page too far", func() error { _, err := e.svc.List(ctx, alice, notify.MaxPage+1, 20); return err }, "page"},
		{"limit 0", func() error { _, err := e.svc.List(ctx, alice, 1, 0); return err }, "limit"},
		{"limit too high", func() error { _, err := e.svc.List(ctx, alice, 1, notify.MaxPageLimit+1); return err }, "limit"},
		{"mark a malformed id", func() error { _, err := e.svc.MarkRead(ctx, alice, "123"); return err }, "id"},
		{"delete a malformed id", func() error { _, err := e.svc.Delete(ctx, alice, "zzzzzzzzzzzzzzzzzzzzzzzz"); return err }, "id"},
	}
	for _, h := range helpers {
		t.Run(h.name, func(t *testing.T) {
			err := h.call()
			var ce *commserver.Error
			if !errors.As(err, &ce) || ce.Code != commserver.CodeInvalid || ce.Field != h.field {
				t.Fatalf("err = %v, want INVALID_ARGUMENT on %s", err, h.field)
			}
		})
	}
}

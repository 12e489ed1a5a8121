package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/chat"
	"github.com/fitmate/commserver/goals"
	"github.com/fitmate/commserver/notify"
	"github.com/fitmate/commserver/scheduler"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// The scheduler's writes on the embedded store: every one its correctness
// rests on is a unique _id.

func TestInsertNotificationOnceInsertsOnce(t *testing.T) {
	d := openTestDB(t)
	ctx := context.Background()
	n := notify.Notification{ID: "65e1c9000000000000000abc", UserID: "aaaaaaaaaaaaaaaaaaaaaaa1", Title: "t", Message: "m",
		Type: notify.TypeWorkoutReminder, Priority: notify.PriorityNormal, CreatedAt: fixedTime, UpdatedAt: fixedTime}
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, c, err := d.InsertNotificationOnce(ctx, n)
			if err != nil || got.ID != n.ID {
				t.Errorf("InsertNotificationOnce = %+v, %v", got, err)
			}
			if c {
				mu.Lock()
				created++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if created != 1 {
		t.Fatalf("%d inserts reported created, want 1", created)
	}
	if total, _, _ := d.CountNotifications(ctx, n.UserID, fixedTime); total != 1 {
		t.Fatalf("%d notifications stored", total)
	}
}

func TestRunLedger(t *testing.T) {
	d := openTestDB(t)
	ctx := context.Background()
	slot := time.Date(2025, 1, 15, 0, 0, 0, 0, time.UTC)
	if _, err := d.RunOf(ctx, "j", slot); !errors.Is(err, commserver.ErrNotFound) {
		t.Fatalf("RunOf before = %v", err)
	}
	r := scheduler.Run{ID: "a1", Job: "j", Slot: commserver.JSTime(slot), Period: "p", Trigger: "schedule",
		Instance: "i1", State: scheduler.StateRunning, StartedAt: commserver.JSTime(slot)}
	if err := d.BeginRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	// A second attempt takes the run over; the first one's end no longer counts.
	r2 := r
	r2.ID, r2.StartedAt = "a2", commserver.JSTime(slot.Add(time.Minute))
	if err := d.BeginRun(ctx, r2); err != nil {
		t.Fatal(err)
	}
	end := commserver.JSTime(slot.Add(2 * time.Minute))
	stale := r
	stale.State, stale.FinishedAt = scheduler.StateFailed, &end
	if err := d.EndRun(ctx, stale); err != nil {
		t.Fatal(err)
	}
	got, err := d.RunOf(ctx, "j", slot)
	if err != nil || got.ID != "a2" || got.State != scheduler.StateRunning || got.Attempts != 2 || got.FinishedAt != nil {
		t.Fatalf("after takeover: %+v, %v", got, err)
	}
	r2.State, r2.FinishedAt = scheduler.StateOK, &end
	r2.Counts = scheduler.Counts{Sent: 3, Skipped: 1, Details: map[string]int64{"textsSent": 2}}
	if err := d.EndRun(ctx, r2); err != nil {
		t.Fatal(err)
	}
	got, err = d.LastRun(ctx, "j")
	if err != nil || got.State != scheduler.StateOK || got.Counts.Sent != 3 || got.Counts.Details["textsSent"] != 2 ||
		got.FinishedAt == nil || time.Time(*got.FinishedAt) != time.Time(end) {
		t.Fatalf("LastRun = %+v, %v", got, err)
	}
}

func TestDeliveriesAndTextClaims(t *testing.T) {
	d := openTestDB(t)
	ctx := context.Background()
	dl := scheduler.Delivery{Key: "j@p/u1", Job: "j", Period: "p", Recipient: "u1", UserID: "u1", RunID: "r",
		NotificationID: "65e1c9000000000000000abc", Created: true, At: fixedTime}
	ok1, err1 := d.ClaimText(ctx, dl)
	ok2, err2 := d.ClaimText(ctx, dl)
	if !ok1 || ok2 || err1 != nil || err2 != nil {
		t.Fatalf("claims: %v %v, %v %v; want exactly the first", ok1, err1, ok2, err2)
	}
	if err := d.SettleText(ctx, dl, scheduler.TextOutcome{State: scheduler.TextSent, Status: "queued", LogID: "x"}); err != nil {
		t.Fatal(err)
	}
	// A claim is not a delivery.
	if got, err := d.Delivered(ctx, "j", "p"); err != nil || len(got) != 0 {
		t.Fatalf("Delivered before = %v, %v", got, err)
	}
	for range 2 { // recording twice is recording once
		if err := d.RecordDelivery(ctx, dl); err != nil {
			t.Fatal(err)
		}
	}
	dl2 := dl
	dl2.Key, dl2.Period = "j@q/u1", "q"
	if err := d.RecordDelivery(ctx, dl2); err != nil {
		t.Fatal(err)
	}
	if got, err := d.Delivered(ctx, "j", "p"); err != nil || len(got) != 1 || !got["u1"] {
		t.Fatalf("Delivered = %v, %v", got, err)
	}
	if n, err := d.PruneLedger(ctx, fixedTime.Add(time.Second)); err != nil || n != 3 {
		t.Fatalf("PruneLedger = %d, %v; want the claim and two deliveries", n, err)
	}
}

func TestConnectionsAndActiveUsers(t *testing.T) {
	d := openTestDB(t)
	ctx := context.Background()
	u1, u2, u3 := "aaaaaaaaaaaaaaaaaaaaaaa1", "bbbbbbbbbbbbbbbbbbbbbbb2", "plain-id"
	day := 24 * time.Hour
	if err := d.RecordConnections(ctx, map[string]time.Time{u1: fixedTime, u2: fixedTime.Add(-10 * day), u3: fixedTime}); err != nil {
		t.Fatal(err)
	}
	// An older time (a late flush from another instance) does not move it back.
	if err := d.RecordConnections(ctx, map[string]time.Time{u1: fixedTime.Add(-20 * day)}); err != nil {
		t.Fatal(err)
	}
	got, err := d.ConnectedSince(ctx, fixedTime.Add(-7*day))
	slices.Sort(got)
	if err != nil || !slices.Equal(got, []string{u1, u3}) {
		t.Fatalf("ConnectedSince = %v, %v", got, err)
	}
	if n, err := d.PruneConnections(ctx, fixedTime.Add(-7*day)); err != nil || n != 1 {
		t.Fatalf("PruneConnections = %d, %v", n, err)
	}

	oid := func(h string) bson.ObjectID { o, _ := bson.ObjectIDFromHex(h); return o }
	_, err = d.db.Collection(colUsers).InsertMany(ctx, []any{
		bson.M{"_id": oid(u1), "name": "김철수", "phoneNumber": " 010-1234-5678 ", "smsNotificationEnabled": true, "lastActiveAt": fixedTime},
		bson.M{"_id": oid(u2), "name": "이영희", "lastActiveAt": fixedTime.Add(-8 * day)},
		bson.M{"_id": u3, "lastActiveAt": fixedTime.Add(-day)},
		bson.M{"_id": "no-activity"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err = d.UsersActiveSince(ctx, fixedTime.Add(-7*day))
	slices.Sort(got)
	if err != nil || !slices.Equal(got, []string{u1, u3}) {
		t.Fatalf("UsersActiveSince = %v, %v", got, err)
	}
	cs, err := d.Contacts(ctx, []string{u1, u2, "nobody"})
	if err != nil || len(cs) != 2 || cs[u1] != (scheduler.Contact{Name: "김철수", PhoneNumber: "010-1234-5678", SMSEnabled: true}) ||
		cs[u2] != (scheduler.Contact{Name: "이영희"}) {
		t.Fatalf("Contacts = %+v, %v", cs, err)
	}
}

func TestWorkoutsPagesAndReadsNumbers(t *testing.T) {
	d := openTestDB(t)
	ctx := context.Background()
	u1, u2 := "aaaaaaaaaaaaaaaaaaaaaaa1", "bbbbbbbbbbbbbbbbbbbbbbb2"
	var ns []notify.Notification
	for i := range 5 {
		ns = append(ns, notify.Notification{UserID: u1, Title: "t", Message: "m", Type: notify.TypeWorkoutCompleted,
			Data: map[string]any{"duration": float64(30 + i), "calories": 100.5}, CreatedAt: fixedTime.Add(time.Duration(i) * time.Hour)})
	}
	ns = append(ns,
		notify.Notification{UserID: u2, Title: "t", Message: "m", Type: notify.TypeWorkoutCompleted, Data: map[string]any{"duration": "long"}, CreatedAt: fixedTime},
		notify.Notification{UserID: u2, Title: "t", Message: "m", Type: notify.TypeWorkoutReminder, CreatedAt: fixedTime},
		notify.Notification{UserID: u2, Title: "t", Message: "m", Type: notify.TypeWorkoutCompleted, CreatedAt: fixedTime.Add(-time.Hour)},
	)
	for i := range ns {
		ns[i].Priority, ns[i].UpdatedAt = notify.PriorityNormal, ns[i].CreatedAt
	}
	if _, err := d.InsertNotifications(ctx, ns); err != nil {
		t.Fatal(err)
	}
	var all []scheduler.Workout
	after := ""
	for {
		page, err := d.Workouts(ctx, fixedTime, fixedTime.Add(24*time.Hour), nil, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].ID
	}
	if len(all) != 6 {
		t.Fatalf("%d workouts, want 6: %+v", len(all), all)
	}
	w := all[0]
	if w.UserID != u1 || !w.HasDuration || w.Duration != 30 || !w.HasCalories || w.Calories != 100.5 || !w.At.Equal(fixedTime) {
		t.Errorf("first workout %+v", w)
	}
	if odd := all[5]; odd.UserID != u2 || odd.HasDuration || odd.HasCalories {
		t.Errorf("a workout without numbers: %+v", odd)
	}
	only, err := d.Workouts(ctx, fixedTime, fixedTime.Add(24*time.Hour), []string{u2}, "", 10)
	if err != nil || len(only) != 1 {
		t.Fatalf("u2's workouts = %+v, %v", only, err)
	}
	users, err := d.WorkoutUsersSince(ctx, fixedTime.Add(-30*time.Minute))
	slices.Sort(users)
	if err != nil || !slices.Equal(users, []string{u1, u2}) {
		t.Fatalf("WorkoutUsersSince = %v, %v", users, err)
	}
}

func TestArchiveCopiesThenDeletes(t *testing.T) {
	d := openTestDB(t)
	ctx := context.Background()
	old, recent := fixedTime.AddDate(0, 0, -100), fixedTime
	var ids []string
	for i, ts := range []time.Time{old, old.Add(time.Minute), old.Add(2 * time.Minute), recent} {
		m, _, err := insertMessage(ctx, d, chat.Message{ChatRoomID: "r", SenderID: "aaaaaaaaaaaaaaaaaaaaaaa1",
			Text: fmt.Sprint("m", i), Type: chat.TypeText, Timestamp: ts, CreatedAt: ts, UpdatedAt: ts})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	cutoff := fixedTime.AddDate(0, 0, -90)
	copied, err := d.CopyOldMessages(ctx, cutoff, 2)
	if err != nil || len(copied) != 2 || copied[0].ID != ids[0] || copied[1].ID != ids[1] {
		t.Fatalf("copied %+v, %v", copied, err)
	}
	// Killed here: the next run copies the same messages again (a no-op) and deletes them.
	again, err := d.CopyOldMessages(ctx, cutoff, 10)
	if err != nil || len(again) != 3 {
		t.Fatalf("second copy %+v, %v", again, err)
	}
	// A message changed since its copy stays until the next run copies it again.
	if _, err := d.SoftDeleteMessage(ctx, ids[2]); err != nil {
		t.Fatal(err)
	}
	n, err := d.DeleteArchivedMessages(ctx, again)
	if err != nil || n != 2 {
		t.Fatalf("deleted %d, %v; want 2", n, err)
	}
	third, _ := d.CopyOldMessages(ctx, cutoff, 10)
	if n, err := d.DeleteArchivedMessages(ctx, third); err != nil || n != 1 || len(third) != 1 {
		t.Fatalf("third pass: %d, %v", n, err)
	}
	if rest, _ := d.CopyOldMessages(ctx, cutoff, 10); len(rest) != 0 {
		t.Fatalf("left behind: %+v", rest)
	}
	archived, _ := d.db.Collection(colArchive).CountDocuments(ctx, bson.M{})
	left, _ := d.db.Collection(colMessages).CountDocuments(ctx, bson.M{})
	if archived != 3 || left != 1 {
		t.Fatalf("archive %d, chatmessages %d; want 3 and 1", archived, left)
	}
	var doc struct {
		IsDeleted bool `bson:"isDeleted"`
	}
	if err := d.db.Collection(colArchive).FindOne(ctx, bson.M{"_id": mustOID(t, ids[2])}).Decode(&doc); err != nil || !doc.IsDeleted {
		t.Errorf("the archive does not hold the message as it was last: %+v, %v", doc, err)
	}
}

func TestGoalsCRUD(t *testing.T) {
	d := openTestDB(t)
	ctx := context.Background()
	svc := goals.New(d, func() time.Time { return fixedTime })
	name, metric, period, target := "주 3회 운동", "workouts", "week", 3.0
	in := goals.Input{Name: &name, Metric: &metric, Period: &period, Target: &target}
	u := "aaaaaaaaaaaaaaaaaaaaaaa1"
	g, created, err := svc.Put(ctx, u, "g1", in)
	if err != nil || !created || g.Target != 3 || g.UserID != u {
		t.Fatalf("Put = %+v, %v, %v", g, created, err)
	}
	target = 4
	if g, created, err = svc.Put(ctx, u, "g1", in); err != nil || created || g.Target != 4 {
		t.Fatalf("replace = %+v, %v, %v", g, created, err)
	}
	if _, _, err := svc.Put(ctx, u, "g2", in); err != nil {
		t.Fatal(err)
	}
	if got, err := svc.Get(ctx, u, "g1"); err != nil || got.Target != 4 || got.Name != name {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if all, err := d.AllGoals(ctx); err != nil || len(all) != 2 {
		t.Fatalf("AllGoals = %+v, %v", all, err)
	}
	if err := svc.Delete(ctx, u, "g1"); err != nil {
		t.Fatal(err)
	}
	if err := svc.Delete(ctx, u, "g1"); !errors.Is(err, commserver.ErrNotFound) {
		t.Fatalf("second delete = %v", err)
	}
	if _, err := svc.Get(ctx, u, "g1"); !errors.Is(err, commserver.ErrNotFound) {
		t.Fatalf("Get deleted = %v", err)
	}
	if gs, err := svc.List(ctx, u); err != nil || len(gs) != 1 || gs[0].GoalID != "g2" {
		t.Fatalf("List = %+v, %v", gs, err)
	}
}

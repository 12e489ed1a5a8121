package store

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/fitmate/commserver/notify"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// canonical renders a raw document as indented canonical Extended JSON,
// which keeps BSON types (int32 vs double, ObjectId, date) visible.
func canonical(t *testing.T, raw bson.Raw) []byte {
	t.Helper()
	ext, err := bson.MarshalExtJSON(raw, true, false)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, ext, "", "  "); err != nil {
		t.Fatal(err)
	}
	return append(out.Bytes(), '\n')
}

var (
	fixedCreated = time.Date(2025, 3, 1, 9, 30, 0, 123_456_789, time.FixedZone("KST", 9*3600))
	fixedExpires = time.Date(2025, 3, 8, 0, 0, 0, 0, time.UTC)
)

// TestStoredNotificationShape pins the document the server writes: the
// fields, names, order and BSON types Mongoose's Notification model wrote,
// so the NestJS server can read it after a rollback.
func TestStoredNotificationShape(t *testing.T) {
	d := openTestDB(t)
	ctx := context.Background()
	cases := map[string]notify.Notification{
		"notification_document.golden.json": {
			UserID: "aaaaaaaaaaaaaaaaaaaaaaa1", Title: "운동 완료! 🎉", Message: "스쿼트 운동을 완료했습니다. 총 30분 동안 245.5칼로리를 소모했어요!",
			Type: notify.TypeWorkoutCompleted, Priority: notify.PriorityHigh, CreatedAt: fixedCreated, UpdatedAt: fixedCreated,
			ExpiresAt: &fixedExpires,
			Data: map[string]any{"exerciseName": "스쿼트", "duration": float64(30), "calories": 245.5, "big": float64(1 << 40),
				"sets": []any{float64(1), float64(2)}, "meta": map[string]any{"z": true, "a": nil}},
		},
		"notification_document_minimal.golden.json": {
			UserID: "user-42", Title: "운동 시간이에요! ⏰", Message: "오늘의 운동을 시작해보세요. 건강한 하루를 만들어가요!",
			Type: notify.TypeWorkoutReminder, Priority: notify.PriorityNormal, CreatedAt: fixedCreated, UpdatedAt: fixedCreated,
		},
	}
	for name, n := range cases {
		t.Run(name, func(t *testing.T) {
			stored, err := d.InsertNotifications(ctx, []notify.Notification{n})
			if err != nil {
				t.Fatal(err)
			}
			oid, err := bson.ObjectIDFromHex(stored[0].ID)
			if err != nil {
				t.Fatalf("stored id %q is not an ObjectId", stored[0].ID)
			}
			raw, err := d.db.Collection(colNotifications).FindOne(ctx, bson.M{"_id": oid}).Raw()
			if err != nil {
				t.Fatal(err)
			}
			// The id is new on every run: pin its type, not its value.
			var doc bson.D
			if err := bson.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			if doc[0].Key != "_id" {
				t.Fatalf("first field is %s, want _id", doc[0].Key)
			}
			doc[0].Value = bson.ObjectID{}
			b, err := bson.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name, canonical(t, b))
		})
	}
}

// TestReadsMongooseNotification reads a document as the NestJS server wrote
// it and pins the JSON the app gets for it.
func TestReadsMongooseNotification(t *testing.T) {
	d := openTestDB(t)
	ctx := context.Background()
	user, _ := bson.ObjectIDFromHex("aaaaaaaaaaaaaaaaaaaaaaa1")
	id, _ := bson.ObjectIDFromHex("65e1a2b3c4d5e6f708192a3b")
	ref, _ := bson.ObjectIDFromHex("65e1a2b3c4d5e6f708192a00")
	read := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	mongoose := bson.D{
		{Key: "_id", Value: id},
		{Key: "userId", Value: user},
		{Key: "title", Value: "목표 달성! 🏆"},
		{Key: "message", Value: "주 3회 운동 목표를 달성했습니다! 축하드려요!"},
		{Key: "type", Value: "goal_achieved"},
		{Key: "data", Value: bson.D{{Key: "goalName", Value: "주 3회 운동"}, {Key: "goalId", Value: ref},
			{Key: "target", Value: int32(3)}, {Key: "achievedAt", Value: bson.NewDateTimeFromTime(read)}}},
		{Key: "isRead", Value: true},
		{Key: "createdAt", Value: fixedCreated},
		{Key: "priority", Value: "normal"},
		{Key: "updatedAt", Value: read},
		{Key: "readAt", Value: read},
		{Key: "__v", Value: int32(0)},
	}
	if _, err := d.db.Collection(colNotifications).InsertOne(ctx, mongoose); err != nil {
		t.Fatal(err)
	}
	ns, err := d.Notifications(ctx, "aaaaaaaaaaaaaaaaaaaaaaa1", time.Now(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 1 {
		t.Fatalf("read %d notifications, want 1", len(ns))
	}
	b, err := json.MarshalIndent(ns[0], "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "mongoose_notification.golden.json", append(b, '\n'))
}

// TestUnexpiredAndExpired checks the boundary both sides use: a notification
// is gone once now reaches expiresAt, and the cleanup removes exactly those.
func TestUnexpiredAndExpired(t *testing.T) {
	d := openTestDB(t)
	ctx := context.Background()
	now := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	for _, e := range []*time.Time{nil, at(-time.Hour), at(0), at(time.Millisecond), at(time.Hour)} {
		n := notify.Notification{UserID: "u1", Title: "t", Message: "m", Type: "system", Priority: "normal",
			CreatedAt: now.Add(-2 * time.Hour), UpdatedAt: now, ExpiresAt: e}
		if _, err := d.InsertNotifications(ctx, []notify.Notification{n}); err != nil {
			t.Fatal(err)
		}
	}
	total, unread, err := d.CountNotifications(ctx, "u1", now)
	if err != nil || total != 3 || unread != 3 {
		t.Fatalf("at now: total %d, unread %d, %v; want 3, 3 (no expiry, +1ms, +1h)", total, unread, err)
	}
	if c, err := d.CountUnread(ctx, []string{"u1"}, now); err != nil || c["u1"] != 3 {
		t.Fatalf("CountUnread = %v, %v", c, err)
	}
	users, deleted, err := d.DeleteExpiredNotifications(ctx, now)
	if err != nil || deleted != 2 || len(users) != 1 || users[0] != "u1" {
		t.Fatalf("DeleteExpiredNotifications = %v, %d, %v; want [u1], 2", users, deleted, err)
	}
	if c, _ := d.CountUnread(ctx, []string{"u1"}, now.Add(-24*time.Hour)); c["u1"] != 3 {
		t.Errorf("after the cleanup, %d remain; want 3", c["u1"])
	}
}

// TestCountUnreadOfManyUsers counts several users' unread notifications in
// one query: ObjectId-looking and plain user ids, read and expired ones left
// out, a user without any absent.
func TestCountUnreadOfManyUsers(t *testing.T) {
	d := openTestDB(t)
	ctx := context.Background()
	now := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	past := now.Add(-time.Minute)
	const oidUser = "65f000000000000000000001"
	var ns []notify.Notification
	add := func(user string, n int, read bool, expires *time.Time) {
		for range n {
			ns = append(ns, notify.Notification{UserID: user, Title: "t", Message: "m", Type: "system",
				Priority: "normal", IsRead: read, CreatedAt: now.Add(-time.Hour), UpdatedAt: now, ExpiresAt: expires})
		}
	}
	add(oidUser, 3, false, nil)
	add(oidUser, 2, true, nil)
	add("plain-user", 1, false, nil)
	add("plain-user", 4, false, &past)
	add("someone-else", 5, false, nil)
	if _, err := d.InsertNotifications(ctx, ns); err != nil {
		t.Fatal(err)
	}
	got, err := d.CountUnread(ctx, []string{oidUser, "plain-user", "nobody"}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{oidUser: 3, "plain-user": 1}
	if len(got) != len(want) || got[oidUser] != 3 || got["plain-user"] != 1 {
		t.Fatalf("CountUnread = %v, want %v", got, want)
	}
	if got, err := d.CountUnread(ctx, []string{"someone-else"}, now); err != nil || got["someone-else"] != 5 {
		t.Fatalf("one user: %v, %v", got, err)
	}
	if got, err := d.CountUnread(ctx, nil, now); err != nil || len(got) != 0 {
		t.Fatalf("no users: %v, %v", got, err)
	}
}

// TestNotificationContact reads the SMS opt-in from users, tolerating
// missing and oddly typed fields.
func TestNotificationContact(t *testing.T) {
	d := openTestDB(t)
	ctx := context.Background()
	u1, _ := bson.ObjectIDFromHex("aaaaaaaaaaaaaaaaaaaaaaa1")
	_, err := d.db.Collection(colUsers).InsertMany(ctx, []any{
		bson.M{"_id": u1, "phoneNumber": "010-1234-5678", "smsNotificationEnabled": true},
		bson.M{"_id": "u2", "phoneNumber": 1012345678, "smsNotificationEnabled": "yes"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]notify.Contact{
		"aaaaaaaaaaaaaaaaaaaaaaa1": {PhoneNumber: "010-1234-5678", SMSEnabled: true},
		"u2":                       {},
		"nobody":                   {},
	} {
		if got, err := d.NotificationContact(ctx, id); err != nil || got != want {
			t.Errorf("contact of %s = %+v, %v; want %+v", id, got, err, want)
		}
	}
}

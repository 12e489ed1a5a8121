package store

import (
	"context"
	"testing"
	"time"

	"github.com/fitmate/commserver/sms"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestSMSLogDocumentShapeIsMongoose(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	ts := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	id, err := db.InsertSMSLog(ctx, sms.LogEntry{PhoneNumber: "+821012345678", Message: "hi",
		TemplateType: sms.TemplateCustom, Status: sms.StatusPending, Timestamp: ts})
	if err != nil {
		t.Fatal(err)
	}
	oid, _ := bson.ObjectIDFromHex(id)
	var raw bson.M
	if err := db.db.Collection(colSMSLogs).FindOne(ctx, bson.M{"_id": oid}).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"phoneNumber": "+821012345678", "message": "hi", "templateType": "custom",
		"status": "pending", "__v": int32(0)}
	for k, v := range want {
		if raw[k] != v {
			t.Errorf("%s = %#v, want %#v", k, raw[k], v)
		}
	}
	for _, k := range []string{"timestamp", "createdAt", "updatedAt"} {
		if _, ok := raw[k].(bson.DateTime); !ok {
			t.Errorf("%s is %T, want a BSON date", k, raw[k])
		}
	}
	for _, k := range []string{"twilioSid", "errorMessage", "errorCode"} {
		if _, ok := raw[k]; ok {
			t.Errorf("%s is set on a new entry: %v", k, raw[k])
		}
	}
}

func TestSMSLogStatusMovesForwardOnly(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	id, err := db.InsertSMSLog(ctx, sms.LogEntry{PhoneNumber: "+821012345678", Message: "m",
		TemplateType: sms.TemplateCustom, Status: sms.StatusPending})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		u     sms.StatusUpdate
		moved bool
		want  sms.Status
	}{
		{sms.StatusUpdate{LogID: id, Status: sms.StatusUnknown, ErrorMessage: "timeout"}, true, sms.StatusUnknown},
		// a callback (by log id) settles it and records the SID
		{sms.StatusUpdate{LogID: id, SID: "SM1", Status: sms.StatusSent}, true, sms.StatusSent},
		// late and duplicate callbacks, by SID
		{sms.StatusUpdate{SID: "SM1", Status: sms.StatusQueued}, false, sms.StatusSent},
		{sms.StatusUpdate{SID: "SM1", Status: sms.StatusSent}, false, sms.StatusSent},
		{sms.StatusUpdate{SID: "SM1", Status: sms.StatusDelivered}, true, sms.StatusDelivered},
		// a final status is final: a late "undelivered" changes nothing
		{sms.StatusUpdate{SID: "SM1", Status: sms.StatusUndelivered, ErrorCode: 30003}, false, sms.StatusDelivered},
		{sms.StatusUpdate{SID: "SM1", Status: sms.StatusPending}, false, sms.StatusDelivered},
		{sms.StatusUpdate{SID: "SM-other", Status: sms.StatusRead}, false, sms.StatusDelivered},
	}
	for i, st := range steps {
		moved, err := db.AdvanceSMSLog(ctx, st.u)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if moved != st.moved {
			t.Errorf("step %d (%+v): moved = %v, want %v", i, st.u, moved, st.moved)
		}
		got, err := db.SMSLogsTo(ctx, "+821012345678", 1)
		if err != nil || len(got) != 1 {
			t.Fatalf("step %d: %v %v", i, got, err)
		}
		if got[0].Status != st.want {
			t.Errorf("step %d: status %s, want %s", i, got[0].Status, st.want)
		}
	}
	got, _ := db.SMSLogsTo(ctx, "+821012345678", 1)
	if got[0].TwilioSID != "SM1" || got[0].ErrorCode != 0 || got[0].ErrorMessage != "timeout" {
		t.Errorf("entry after the steps: %+v", got[0])
	}
}

func TestSMSLogRecordsSIDWhenCallbackCameFirst(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	id, _ := db.InsertSMSLog(ctx, sms.LogEntry{PhoneNumber: "+821011112222", Message: "m", Status: sms.StatusPending})
	if moved, err := db.AdvanceSMSLog(ctx, sms.StatusUpdate{LogID: id, Status: sms.StatusDelivered}); err != nil || !moved {
		t.Fatalf("callback: %v %v", moved, err)
	}
	// the create's answer arrives after the callback: no status change, but the SID is recorded
	if moved, err := db.AdvanceSMSLog(ctx, sms.StatusUpdate{LogID: id, SID: "SM9", Status: sms.StatusQueued}); err != nil || moved {
		t.Fatalf("late create answer: moved=%v err=%v", moved, err)
	}
	got, _ := db.SMSLogsTo(ctx, "+821011112222", 1)
	if got[0].Status != sms.StatusDelivered || got[0].TwilioSID != "SM9" {
		t.Errorf("entry: %+v", got[0])
	}
}

func TestSMSStatisticsByStatusInRange(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	day := time.Date(2025, 5, 10, 0, 0, 0, 0, time.UTC)
	add := func(at time.Time, st sms.Status) {
		if _, err := db.InsertSMSLog(ctx, sms.LogEntry{PhoneNumber: "+821012345678", Message: "m", Status: st, Timestamp: at}); err != nil {
			t.Fatal(err)
		}
	}
	add(day.Add(time.Hour), sms.StatusSent)
	add(day.Add(2*time.Hour), sms.StatusSent)
	add(day.Add(3*time.Hour), sms.StatusFailed)
	add(day.Add(-time.Hour), sms.StatusSent)     // before the range
	add(day.Add(25*time.Hour), sms.StatusQueued) // after it
	got, err := db.SMSStatistics(ctx, day, day.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []sms.Stat{{Status: sms.StatusFailed, Count: 1}, {Status: sms.StatusSent, Count: 2}}
	if len(got) != len(want) {
		t.Fatalf("stats = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("stats[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	empty, err := db.SMSStatistics(ctx, day.Add(-48*time.Hour), day.Add(-24*time.Hour))
	if err != nil || len(empty) != 0 {
		t.Errorf("empty range: %v %v", empty, err)
	}
}

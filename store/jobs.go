package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/notify"
	"github.com/fitmate/commserver/scheduler"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The scheduler's collections (ours). Every write the jobs' correctness
// rests on is keyed by _id: unique on every server, and the one lookup the
// embedded store pushes down.
const (
	colJobRuns       = "jobruns"              // one per job and slot: _id "job@slot"
	colJobDeliveries = "jobdeliveries"        // one per job, period and recipient (and one per text claim)
	colConnections   = "lastconnections"      // one per user: _id the user id, lastConnectedAt
	colArchive       = "chatmessages_archive" // chat messages moved out of chatmessages, same _id
)

var _ scheduler.Store = (*DB)(nil)

// pageSize is how many documents one read of a paged scan returns.
const pageSize = 1000

// InsertNotificationOnce stores n under its ID (an ObjectId the caller
// derived) unless it exists: a duplicate key means an earlier attempt
// stored it, which is returned with created false.
func (d *DB) InsertNotificationOnce(ctx context.Context, n notify.Notification) (notify.Notification, bool, error) {
	oid, err := objectID("id", n.ID)
	if err != nil {
		return notify.Notification{}, false, err
	}
	doc := newNotificationDoc(n)
	doc.ID = oid
	err = d.call(ctx, "insert notification once", func(ctx context.Context) error {
		_, err := d.db.Collection(colNotifications).InsertOne(ctx, doc)
		return err
	})
	if err == nil {
		if d.index != nil {
			d.index.unread([]notificationDoc{doc})
		}
		return doc.notification(), true, nil
	}
	if !mongo.IsDuplicateKeyError(err) {
		if d.index != nil && errors.Is(err, commserver.ErrStorageUnavailable) {
			d.index.markStale("user:", n.UserID) // stored or not: nobody knows
		}
		return notify.Notification{}, false, err
	}
	var existing notificationDoc
	err = d.call(ctx, "find notification", func(ctx context.Context) error {
		return d.db.Collection(colNotifications).FindOne(ctx, bson.M{"_id": oid}).Decode(&existing)
	})
	if err != nil {
		return notify.Notification{}, false, err
	}
	if d.index != nil && !existing.IsRead {
		// An earlier attempt stored it, perhaps without an answer: the
		// index learns of it now (adding an id it has is harmless).
		d.index.unread([]notificationDoc{existing})
	}
	return existing.notification(), false, nil
}

// upsert runs an upsert, again when it lost a race: two upserts of one
// missing _id may both try to insert it, and the loser gets a duplicate key
// (MongoDB retries some such upserts itself; the embedded store does not).
// Run again, the document exists and the update applies.
func (d *DB) upsert(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	var err error
	for range 3 {
		if err = d.call(ctx, op, fn); !isDuplicateKey(err) {
			return err
		}
	}
	return err
}

// isDuplicateKey reports a duplicate key, alone or in a bulk write.
func isDuplicateKey(err error) bool {
	return err != nil && mongo.IsDuplicateKeyError(err)
}

// jobRunDoc is a document of jobruns.
type jobRunDoc struct {
	ID         string     `bson:"_id"`
	Job        string     `bson:"job"`
	Slot       time.Time  `bson:"slot"`
	Period     string     `bson:"period"`
	RunID      string     `bson:"runId"`
	Trigger    string     `bson:"trigger"`
	Instance   string     `bson:"instance"`
	State      string     `bson:"state"`
	StartedAt  time.Time  `bson:"startedAt"`
	FinishedAt *time.Time `bson:"finishedAt,omitempty"`
	Counts     countsDoc  `bson:"counts"`
	Error      string     `bson:"error,omitempty"`
	Attempts   int32      `bson:"attempts"`
}

type countsDoc struct {
	Sent    int64            `bson:"sent"`
	Skipped int64            `bson:"skipped"`
	Failed  int64            `bson:"failed"`
	Details map[string]int64 `bson:"details,omitempty"`
}

func (r jobRunDoc) run() scheduler.Run {
	out := scheduler.Run{ID: r.RunID, Job: r.Job, Slot: commserver.JSTime(r.Slot.UTC()), Period: r.Period, Trigger: r.Trigger,
		Instance: r.Instance, State: r.State, StartedAt: commserver.JSTime(r.StartedAt.UTC()), Error: r.Error,
		Attempts: int(r.Attempts), Counts: scheduler.Counts{Sent: r.Counts.Sent, Skipped: r.Counts.Skipped,
			Failed: r.Counts.Failed, Details: r.Counts.Details}}
	if r.FinishedAt != nil {
		f := commserver.JSTime(r.FinishedAt.UTC())
		out.FinishedAt = &f
	}
	return out
}

func runDocID(job string, slot time.Time) string { return job + "@" + slot.UTC().Format(time.RFC3339) }

func ms(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// BeginRun upserts the run's record and counts the attempt.
func (d *DB) BeginRun(ctx context.Context, r scheduler.Run) error {
	slot := time.Time(r.Slot)
	return d.upsert(ctx, "begin job run", func(ctx context.Context) error {
		_, err := d.db.Collection(colJobRuns).UpdateOne(ctx, bson.M{"_id": runDocID(r.Job, slot)}, bson.M{
			"$set": bson.M{"job": r.Job, "slot": ms(slot), "period": r.Period, "runId": r.ID, "trigger": r.Trigger,
				"instance": r.Instance, "state": r.State, "startedAt": ms(time.Time(r.StartedAt)), "counts": countsDoc{}, "error": ""},
			"$unset": bson.M{"finishedAt": ""},
			"$inc":   bson.M{"attempts": int32(1)},
		}, options.UpdateOne().SetUpsert(true))
		return err
	})
}

// EndRun records the attempt's outcome if the run is still this attempt's.
func (d *DB) EndRun(ctx context.Context, r scheduler.Run) error {
	set := bson.M{"state": r.State, "error": r.Error, "counts": countsDoc{Sent: r.Counts.Sent, Skipped: r.Counts.Skipped,
		Failed: r.Counts.Failed, Details: r.Counts.Details}}
	if r.FinishedAt != nil {
		set["finishedAt"] = ms(time.Time(*r.FinishedAt))
	}
	return d.call(ctx, "end job run", func(ctx context.Context) error {
		_, err := d.db.Collection(colJobRuns).UpdateOne(ctx,
			bson.M{"_id": runDocID(r.Job, time.Time(r.Slot)), "runId": r.ID}, bson.M{"$set": set})
		return err
	})
}

// RunOf returns the run of job at slot.
func (d *DB) RunOf(ctx context.Context, job string, slot time.Time) (scheduler.Run, error) {
	var doc jobRunDoc
	err := d.call(ctx, "find job run", func(ctx context.Context) error {
		return d.db.Collection(colJobRuns).FindOne(ctx, bson.M{"_id": runDocID(job, slot)}).Decode(&doc)
	})
	if errors.Is(err, mongo.ErrNoDocuments) {
		return scheduler.Run{}, commserver.Errorf(commserver.CodeNotFound, "no run of %s at %s", job, slot.UTC().Format(time.RFC3339))
	}
	if err != nil {
		return scheduler.Run{}, err
	}
	return doc.run(), nil
}

// LastRun returns job's most recently started run.
func (d *DB) LastRun(ctx context.Context, job string) (scheduler.Run, error) {
	var doc jobRunDoc
	err := d.call(ctx, "find last job run", func(ctx context.Context) error {
		return d.db.Collection(colJobRuns).FindOne(ctx, bson.M{"job": job},
			options.FindOne().SetSort(bson.D{{Key: "startedAt", Value: -1}})).Decode(&doc)
	})
	if errors.Is(err, mongo.ErrNoDocuments) {
		return scheduler.Run{}, commserver.Errorf(commserver.CodeNotFound, "%s has not run", job)
	}
	if err != nil {
		return scheduler.Run{}, err
	}
	return doc.run(), nil
}

// deliveryDoc is a document of jobdeliveries: a delivery (state "delivered")
// or a text's claim (_id ending in #sms, state a text state).
type deliveryDoc struct {
	ID             string         `bson:"_id"`
	Job            string         `bson:"job"`
	Period         string         `bson:"period"`
	Recipient      string         `bson:"recipient"`
	UserID         any            `bson:"userId"`
	RunID          string         `bson:"runId"`
	State          string         `bson:"state"`
	NotificationID *bson.ObjectID `bson:"notificationId,omitempty"`
	Created        bool           `bson:"created,omitempty"`
	Text           *textDoc       `bson:"text,omitempty"`
	At             time.Time      `bson:"at"`
}

type textDoc struct {
	State  string `bson:"state"`
	Status string `bson:"status,omitempty"`
	LogID  string `bson:"logId,omitempty"`
	Error  string `bson:"error,omitempty"`
}

const (
	stateDelivered = "delivered"
	textClaimSufix = "#sms"
)

// Delivered returns the recipients of job's deliveries recorded in period.
func (d *DB) Delivered(ctx context.Context, job, period string) (map[string]bool, error) {
	out := map[string]bool{}
	after := ""
	for {
		filter := bson.M{"job": job, "period": period, "state": stateDelivered}
		if after != "" {
			filter["_id"] = bson.M{"$gt": after}
		}
		var docs []struct {
			ID        string `bson:"_id"`
			Recipient string `bson:"recipient"`
		}
		err := d.all(ctx, "find deliveries", &docs, func(ctx context.Context) (*mongo.Cursor, error) {
			return d.db.Collection(colJobDeliveries).Find(ctx, filter, options.Find().
				SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(pageSize).SetProjection(bson.M{"recipient": 1}))
		})
		if err != nil {
			return nil, err
		}
		for _, doc := range docs {
			out[doc.Recipient] = true
		}
		if len(docs) < pageSize {
			return out, nil
		}
		after = docs[len(docs)-1].ID
	}
}

func newDeliveryDoc(dl scheduler.Delivery, id, state string) deliveryDoc {
	doc := deliveryDoc{ID: id, Job: dl.Job, Period: dl.Period, Recipient: dl.Recipient, UserID: idValue(dl.UserID),
		RunID: dl.RunID, State: state, Created: dl.Created, At: ms(dl.At)}
	if oid, err := bson.ObjectIDFromHex(dl.NotificationID); err == nil {
		doc.NotificationID = &oid
	}
	if dl.Text != nil {
		doc.Text = &textDoc{State: dl.Text.State, Status: dl.Text.Status, LogID: dl.Text.LogID, Error: dl.Text.Error}
	}
	return doc
}

// RecordDelivery upserts the delivery's record under its key.
func (d *DB) RecordDelivery(ctx context.Context, dl scheduler.Delivery) error {
	doc := newDeliveryDoc(dl, dl.Key, stateDelivered)
	return d.upsert(ctx, "record delivery", func(ctx context.Context) error {
		_, err := d.db.Collection(colJobDeliveries).ReplaceOne(ctx, bson.M{"_id": doc.ID}, doc, options.Replace().SetUpsert(true))
		return err
	})
}

// ClaimText inserts the text's claim; false when it exists.
func (d *DB) ClaimText(ctx context.Context, dl scheduler.Delivery) (bool, error) {
	if dl.At.IsZero() {
		dl.At = time.Now()
	}
	doc := newDeliveryDoc(dl, dl.Key+textClaimSufix, scheduler.TextClaimed)
	doc.NotificationID, doc.Created, doc.Text = nil, false, nil
	err := d.call(ctx, "claim text", func(ctx context.Context) error {
		_, err := d.db.Collection(colJobDeliveries).InsertOne(ctx, doc)
		return err
	})
	if mongo.IsDuplicateKeyError(err) {
		return false, nil
	}
	return err == nil, err
}

// SettleText records a claimed text's outcome on its claim.
func (d *DB) SettleText(ctx context.Context, dl scheduler.Delivery, o scheduler.TextOutcome) error {
	return d.call(ctx, "settle text", func(ctx context.Context) error {
		_, err := d.db.Collection(colJobDeliveries).UpdateOne(ctx, bson.M{"_id": dl.Key + textClaimSufix},
			bson.M{"$set": bson.M{"state": o.State, "text": textDoc{State: o.State, Status: o.Status, LogID: o.LogID, Error: o.Error},
				"settledAt": ms(time.Now())}})
		return err
	})
}

// PruneLedger deletes runs started and deliveries recorded before before.
func (d *DB) PruneLedger(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := d.call(ctx, "prune ledger", func(ctx context.Context) error {
		res, err := d.db.Collection(colJobDeliveries).DeleteMany(ctx, bson.M{"at": bson.M{"$lt": before.UTC()}})
		if err != nil {
			return err
		}
		n += res.DeletedCount
		res, err = d.db.Collection(colJobRuns).DeleteMany(ctx, bson.M{"startedAt": bson.M{"$lt": before.UTC()}})
		if err != nil {
			return err
		}
		n += res.DeletedCount
		return nil
	})
	return n, err
}

// RecordConnections upserts each user's lastConnectedAt, never moving it back ($max).
func (d *DB) RecordConnections(ctx context.Context, seen map[string]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	models := make([]mongo.WriteModel, 0, len(seen))
	for u, t := range seen {
		models = append(models, mongo.NewUpdateOneModel().SetFilter(bson.M{"_id": idValue(u)}).
			SetUpdate(bson.M{"$max": bson.M{"lastConnectedAt": ms(t)}}).SetUpsert(true))
	}
	return d.upsert(ctx, "record connections", func(ctx context.Context) error {
		_, err := d.db.Collection(colConnections).BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
		return err
	})
}

// idsWhere pages through col's documents matching filter and returns their
// _ids as strings. User ids are ObjectIds or strings; a range on _id only
// matches its own BSON type, so each type is paged on its own.
func (d *DB) idsWhere(ctx context.Context, op, col string, filter bson.M) ([]string, error) {
	var out []string
	for _, typ := range []string{"objectId", "string"} {
		ids, err := d.idsOfType(ctx, op, col, filter, typ)
		if err != nil {
			return nil, err
		}
		out = append(out, ids...)
	}
	return out, nil
}

func (d *DB) idsOfType(ctx context.Context, op, col string, filter bson.M, typ string) ([]string, error) {
	var out []string
	var after any
	for {
		f := bson.M{}
		for k, v := range filter {
			f[k] = v
		}
		idf := bson.M{"$type": typ}
		if after != nil {
			idf["$gt"] = after
		}
		f["_id"] = idf
		var docs []struct {
			ID any `bson:"_id"`
		}
		err := d.all(ctx, op, &docs, func(ctx context.Context) (*mongo.Cursor, error) {
			return d.db.Collection(col).Find(ctx, f, options.Find().
				SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(pageSize).SetProjection(bson.M{"_id": 1}))
		})
		if err != nil {
			return nil, err
		}
		for _, doc := range docs {
			out = append(out, idString(doc.ID))
		}
		if len(docs) < pageSize {
			return out, nil
		}
		after = docs[len(docs)-1].ID
	}
}

// ConnectedSince returns the users whose lastConnectedAt is at or after since.
func (d *DB) ConnectedSince(ctx context.Context, since time.Time) ([]string, error) {
	return d.idsWhere(ctx, "find connections", colConnections, bson.M{"lastConnectedAt": bson.M{"$gte": since.UTC()}})
}

// UsersActiveSince returns the users whose users document has lastActiveAt at or after since.
func (d *DB) UsersActiveSince(ctx context.Context, since time.Time) ([]string, error) {
	return d.idsWhere(ctx, "find active users", colUsers, bson.M{"lastActiveAt": bson.M{"$gte": since.UTC()}})
}

// WorkoutUsersSince returns the users with a workout_completed notification
// created at or after since. (Not distinct: the embedded store refuses the
// driver's maxTimeMS on it.)
func (d *DB) WorkoutUsersSince(ctx context.Context, since time.Time) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	after := ""
	for {
		ws, err := d.Workouts(ctx, since, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), nil, after, pageSize)
		if err != nil {
			return nil, err
		}
		for _, w := range ws {
			if !seen[w.UserID] {
				seen[w.UserID] = true
				out = append(out, w.UserID)
			}
		}
		if len(ws) < pageSize {
			return out, nil
		}
		after = ws[len(ws)-1].ID
	}
}

// PruneConnections forgets connections recorded before before.
func (d *DB) PruneConnections(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := d.call(ctx, "prune connections", func(ctx context.Context) error {
		res, err := d.db.Collection(colConnections).DeleteMany(ctx, bson.M{"lastConnectedAt": bson.M{"$lt": before.UTC()}})
		if err == nil {
			n = res.DeletedCount
		}
		return err
	})
	return n, err
}

// Workouts returns a page of workout_completed notifications created in [from, to), in _id order.
func (d *DB) Workouts(ctx context.Context, from, to time.Time, userIDs []string, afterID string, limit int) ([]scheduler.Workout, error) {
	filter := bson.M{"type": notify.TypeWorkoutCompleted, "createdAt": bson.M{"$gte": from.UTC(), "$lt": to.UTC()}}
	if userIDs != nil {
		filter["userId"] = bson.M{"$in": idValues(userIDs)}
	}
	if afterID != "" {
		oid, err := objectID("afterID", afterID)
		if err != nil {
			return nil, err
		}
		filter["_id"] = bson.M{"$gt": oid}
	}
	var docs []struct {
		ID        bson.ObjectID `bson:"_id"`
		UserID    any           `bson:"userId"`
		CreatedAt time.Time     `bson:"createdAt"`
		Data      bson.M        `bson:"data"`
	}
	err := d.all(ctx, "find workouts", &docs, func(ctx context.Context) (*mongo.Cursor, error) {
		return d.db.Collection(colNotifications).Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).
			SetLimit(int64(limit)).SetProjection(bson.M{"userId": 1, "createdAt": 1, "data.duration": 1, "data.calories": 1}))
	})
	if err != nil {
		return nil, err
	}
	out := make([]scheduler.Workout, len(docs))
	for i, doc := range docs {
		w := scheduler.Workout{ID: doc.ID.Hex(), UserID: idString(doc.UserID), At: doc.CreatedAt.UTC()}
		w.Duration, w.HasDuration = number(doc.Data["duration"])
		w.Calories, w.HasCalories = number(doc.Data["calories"])
		out[i] = w
	}
	return out, nil
}

// number reads a stored number (int32, int64, double or decimal); NaN,
// infinities and negative numbers are not workout figures.
func number(v any) (float64, bool) {
	var f float64
	switch t := v.(type) {
	case int32:
		f = float64(t)
	case int64:
		f = float64(t)
	case float64:
		f = t
	case bson.Decimal128:
		p, err := fmt.Sscan(t.String(), &f)
		if err != nil || p != 1 {
			return 0, false
		}
	default:
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, false
	}
	return f, true
}

// Contacts reads name, phoneNumber and smsNotificationEnabled from users.
func (d *DB) Contacts(ctx context.Context, userIDs []string) (map[string]scheduler.Contact, error) {
	users, err := d.usersByID(ctx, idValues(userIDs), bson.M{"name": 1, "phoneNumber": 1, "smsNotificationEnabled": 1})
	if err != nil {
		return nil, err
	}
	out := make(map[string]scheduler.Contact, len(users))
	for id, u := range users {
		name, _ := u["name"].(string)
		phone, _ := u["phoneNumber"].(string)
		enabled, _ := u["smsNotificationEnabled"].(bool)
		out[id] = scheduler.Contact{Name: name, PhoneNumber: strings.TrimSpace(phone), SMSEnabled: enabled}
	}
	return out, nil
}

// CopyOldMessages copies up to limit chat messages older than cutoff into
// the archive under the same _id (an upsert: a message copied before is
// overwritten with its current version) and returns them once every write
// was acknowledged.
func (d *DB) CopyOldMessages(ctx context.Context, cutoff time.Time, limit int) ([]scheduler.ArchivedMessage, error) {
	var docs []bson.D
	err := d.all(ctx, "find old messages", &docs, func(ctx context.Context) (*mongo.Cursor, error) {
		return d.db.Collection(colMessages).Find(ctx, bson.M{"timestamp": bson.M{"$lt": cutoff.UTC()}},
			options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	})
	if err != nil || len(docs) == 0 {
		return nil, err
	}
	out := make([]scheduler.ArchivedMessage, len(docs))
	models := make([]mongo.WriteModel, len(docs))
	for i, doc := range docs {
		var id any
		var updated time.Time
		for _, e := range doc {
			switch e.Key {
			case "_id":
				id = e.Value
			case "updatedAt":
				if dt, ok := e.Value.(bson.DateTime); ok {
					updated = dt.Time().UTC()
				}
			}
		}
		out[i] = scheduler.ArchivedMessage{ID: idString(id), UpdatedAt: updated}
		models[i] = mongo.NewReplaceOneModel().SetFilter(bson.M{"_id": id}).SetReplacement(doc).SetUpsert(true)
	}
	err = d.call(ctx, "copy messages to the archive", func(ctx context.Context) error {
		res, err := d.db.Collection(colArchive).BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
		if err != nil {
			return err
		}
		if got := res.MatchedCount + res.UpsertedCount; got != int64(len(models)) {
			return fmt.Errorf("the archive acknowledged %d of %d copies", got, len(models))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteArchivedMessages deletes the copied messages from chatmessages,
// each only if its updatedAt is still the one copied.
func (d *DB) DeleteArchivedMessages(ctx context.Context, msgs []scheduler.ArchivedMessage) (int64, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	models := make([]mongo.WriteModel, len(msgs))
	for i, m := range msgs {
		f := bson.M{"_id": idValue(m.ID)}
		if m.UpdatedAt.IsZero() {
			f["updatedAt"] = bson.M{"$exists": false}
		} else {
			f["updatedAt"] = m.UpdatedAt
		}
		models[i] = mongo.NewDeleteOneModel().SetFilter(f)
	}
	var before []messageDoc
	if d.index != nil {
		// The embedded index counts and copies messages: learn the rooms of
		// those about to go (by _id, an index search).
		for _, m := range msgs {
			oid, err := bson.ObjectIDFromHex(m.ID)
			if err != nil {
				continue // not one of ours to count
			}
			if doc, err := d.messageByID(ctx, oid); err == nil {
				before = append(before, doc)
			} else if !errors.Is(err, mongo.ErrNoDocuments) {
				return 0, err
			}
		}
	}
	var n int64
	err := d.call(ctx, "delete archived messages", func(ctx context.Context) error {
		res, err := d.db.Collection(colMessages).BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
		if err == nil {
			n = res.DeletedCount
		}
		return err
	})
	if d.index != nil {
		d.unindexDeleted(ctx, before, err)
	}
	return n, err
}

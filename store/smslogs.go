package store

import (
	"context"
	"time"

	"github.com/fitmate/commserver/sms"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

var _ sms.Store = (*DB)(nil)

// smsLogDoc is a document of smslogs, as Mongoose's SmsLog model wrote it
// (the seed's phoneNumber, message, templateType, status, twilioSid,
// errorMessage, timestamp, plus timestamps and __v). errorCode is ours.
// The seed's documents may lack templateType (its /sms/send set none).
type smsLogDoc struct {
	ID           bson.ObjectID `bson:"_id"`
	PhoneNumber  string        `bson:"phoneNumber"`
	Message      string        `bson:"message"`
	TemplateType string        `bson:"templateType,omitempty"`
	Status       string        `bson:"status"`
	TwilioSID    string        `bson:"twilioSid,omitempty"`
	ErrorMessage string        `bson:"errorMessage,omitempty"`
	ErrorCode    int32         `bson:"errorCode,omitempty"`
	Timestamp    time.Time     `bson:"timestamp"`
	CreatedAt    time.Time     `bson:"createdAt"`
	UpdatedAt    time.Time     `bson:"updatedAt"`
	V            int32         `bson:"__v"`
}

func (d smsLogDoc) entry() sms.LogEntry {
	return sms.LogEntry{ID: d.ID.Hex(), PhoneNumber: d.PhoneNumber, Message: d.Message,
		TemplateType: sms.Template(d.TemplateType), Status: sms.Status(d.Status), TwilioSID: d.TwilioSID,
		ErrorMessage: d.ErrorMessage, ErrorCode: int(d.ErrorCode), Timestamp: d.Timestamp.UTC(),
		CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC()}
}

// InsertSMSLog implements sms.Store.
func (d *DB) InsertSMSLog(ctx context.Context, e sms.LogEntry) (string, error) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	doc := smsLogDoc{ID: bson.NewObjectID(), PhoneNumber: e.PhoneNumber, Message: e.Message,
		TemplateType: string(e.TemplateType), Status: string(e.Status), TwilioSID: e.TwilioSID,
		ErrorMessage: e.ErrorMessage, ErrorCode: int32(e.ErrorCode), Timestamp: e.Timestamp,
		CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt}
	if doc.Timestamp.IsZero() {
		doc.Timestamp = now
	}
	if doc.CreatedAt.IsZero() {
		doc.CreatedAt = doc.Timestamp
	}
	if doc.UpdatedAt.IsZero() {
		doc.UpdatedAt = doc.CreatedAt
	}
	err := d.call(ctx, "insert sms log", func(ctx context.Context) error {
		_, err := d.db.Collection(colSMSLogs).InsertOne(ctx, doc)
		return err
	})
	if err != nil {
		return "", err
	}
	return doc.ID.Hex(), nil
}

// AdvanceSMSLog implements sms.Store. The status condition is part of the
// update's filter, so two racing updates cannot move a status backwards.
func (d *DB) AdvanceSMSLog(ctx context.Context, u sms.StatusUpdate) (bool, error) {
	before := sms.StatusesBefore(u.Status)
	if len(before) == 0 {
		return false, nil
	}
	statuses := make(bson.A, len(before))
	for i, s := range before {
		statuses[i] = string(s)
	}
	target := bson.M{}
	switch {
	case u.LogID != "":
		oid, err := objectID("logId", u.LogID)
		if err != nil {
			return false, err
		}
		target["_id"] = oid
	case u.SID != "":
		target["twilioSid"] = u.SID
	default:
		return false, nil
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	set := bson.M{"status": string(u.Status), "updatedAt": now}
	if u.SID != "" {
		set["twilioSid"] = u.SID
	}
	if u.ErrorCode != 0 {
		set["errorCode"] = int32(u.ErrorCode)
	}
	if u.ErrorMessage != "" {
		set["errorMessage"] = u.ErrorMessage
	}
	filter := bson.M{"status": bson.M{"$in": statuses}}
	for k, v := range target {
		filter[k] = v
	}
	var moved bool
	err := d.call(ctx, "advance sms log", func(ctx context.Context) error {
		res, err := d.db.Collection(colSMSLogs).UpdateOne(ctx, filter, bson.M{"$set": set})
		if err != nil {
			return err
		}
		moved = res.MatchedCount > 0
		if moved || u.LogID == "" || u.SID == "" {
			return nil
		}
		// The status was already further along (a callback came first):
		// still record which Twilio message this entry is.
		_, err = d.db.Collection(colSMSLogs).UpdateOne(ctx,
			bson.M{"_id": target["_id"], "twilioSid": bson.M{"$exists": false}},
			bson.M{"$set": bson.M{"twilioSid": u.SID, "updatedAt": now}})
		return err
	})
	return moved, err
}

// SMSStatistics implements sms.Store: the seed's aggregate, sorted by status.
func (d *DB) SMSStatistics(ctx context.Context, from, to time.Time) ([]sms.Stat, error) {
	pipeline := mongo.Pipeline{
		{{Key: "$match", Value: bson.M{"timestamp": bson.M{"$gte": from, "$lte": to}}}},
		{{Key: "$group", Value: bson.M{"_id": "$status", "count": bson.M{"$sum": 1}}}},
		{{Key: "$sort", Value: bson.M{"_id": 1}}},
	}
	var rows []struct {
		ID    string `bson:"_id"`
		Count int64  `bson:"count"`
	}
	err := d.all(ctx, "sms statistics", &rows, func(ctx context.Context) (*mongo.Cursor, error) {
		return d.db.Collection(colSMSLogs).Aggregate(ctx, pipeline)
	})
	if err != nil {
		return nil, err
	}
	out := make([]sms.Stat, len(rows))
	for i, r := range rows {
		out[i] = sms.Stat{Status: sms.Status(r.ID), Count: r.Count}
	}
	return out, nil
}

// SMSLogsTo returns the newest log entries of texts to a number (E.164), at most limit.
func (d *DB) SMSLogsTo(ctx context.Context, phoneNumber string, limit int) ([]sms.LogEntry, error) {
	var docs []smsLogDoc
	err := d.all(ctx, "find sms logs", &docs, func(ctx context.Context) (*mongo.Cursor, error) {
		return d.db.Collection(colSMSLogs).Find(ctx, bson.M{"phoneNumber": phoneNumber},
			options.Find().SetSort(bson.D{{Key: "timestamp", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(int64(limit)))
	})
	if err != nil {
		return nil, err
	}
	out := make([]sms.LogEntry, len(docs))
	for i, doc := range docs {
		out[i] = doc.entry()
	}
	return out, nil
}

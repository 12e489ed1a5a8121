package store

import (
	"context"
	"errors"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/notify"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

var _ notify.Store = (*DB)(nil)

// notificationDoc is a document of notifications, as Mongoose's Notification
// model wrote it (timestamps: true, so updatedAt too, and __v).
type notificationDoc struct {
	ID        bson.ObjectID `bson:"_id"`
	UserID    any           `bson:"userId"`
	Title     string        `bson:"title"`
	Message   string        `bson:"message"`
	Type      string        `bson:"type"`
	Data      any           `bson:"data,omitempty"`
	IsRead    bool          `bson:"isRead"`
	ReadAt    *time.Time    `bson:"readAt,omitempty"`
	CreatedAt time.Time     `bson:"createdAt"`
	ExpiresAt *time.Time    `bson:"expiresAt,omitempty"`
	Priority  string        `bson:"priority"`
	UpdatedAt time.Time     `bson:"updatedAt"`
	V         int32         `bson:"__v"`
}

func newNotificationDoc(n notify.Notification) notificationDoc {
	d := notificationDoc{
		ID: bson.NewObjectID(), UserID: idValue(n.UserID), Title: n.Title, Message: n.Message, Type: n.Type,
		IsRead: n.IsRead, ReadAt: utcMillis(n.ReadAt), CreatedAt: n.CreatedAt.UTC().Truncate(time.Millisecond),
		ExpiresAt: utcMillis(n.ExpiresAt), Priority: n.Priority, UpdatedAt: n.UpdatedAt.UTC().Truncate(time.Millisecond),
	}
	if n.Data != nil {
		d.Data = bsonValue(n.Data)
	}
	return d
}

func utcMillis(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC().Truncate(time.Millisecond)
	return &u
}

func (d notificationDoc) notification() notify.Notification {
	n := notify.Notification{
		ID: d.ID.Hex(), UserID: idString(d.UserID), Title: d.Title, Message: d.Message, Type: d.Type,
		IsRead: d.IsRead, ReadAt: utcMillis(d.ReadAt), CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(),
		ExpiresAt: utcMillis(d.ExpiresAt), Priority: d.Priority,
	}
	if m, ok := plainValue(d.Data).(map[string]any); ok {
		n.Data = m
	}
	if n.Priority == "" {
		n.Priority = notify.PriorityNormal // Mongoose's default
	}
	if n.UpdatedAt.IsZero() {
		n.UpdatedAt = n.CreatedAt
	}
	return n
}

// unexpired selects notifications whose expiresAt is absent or in the
// future: an expired notification is gone for its user whether or not the
// database has a TTL monitor (FerretDB has none).
func unexpired(now time.Time) bson.M {
	return bson.M{"$or": bson.A{
		bson.M{"expiresAt": bson.M{"$exists": false}},
		bson.M{"expiresAt": nil},
		bson.M{"expiresAt": bson.M{"$gt": now}},
	}}
}

// ofUser selects the user's unexpired notifications.
func ofUser(userID string, now time.Time) bson.M {
	f := unexpired(now)
	f["userId"] = idValue(userID)
	return f
}

var notificationsNewestFirst = bson.D{{Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}}

// InsertNotifications stores ns in one insertMany and returns them with their ids.
func (d *DB) InsertNotifications(ctx context.Context, ns []notify.Notification) ([]notify.Notification, error) {
	if len(ns) == 0 {
		return nil, nil
	}
	docs := make([]any, len(ns))
	out := make([]notify.Notification, len(ns))
	for i, n := range ns {
		doc := newNotificationDoc(n)
		docs[i] = doc
		out[i] = doc.notification()
	}
	var err error
	if len(docs) == 1 {
		// Concurrent creates share one insertMany (one transaction on the
		// embedded store, whose writers otherwise contend for its lock). A
		// duplicate _id means a retried batch had landed: ours is stored.
		// The batcher indexes what it stored.
		if err = d.notifications.insert(ctx, docs[0]); errors.Is(err, errDuplicate) {
			err = nil
		}
	} else {
		err = d.call(ctx, "insert notifications", func(ctx context.Context) error {
			_, err := d.db.Collection(colNotifications).InsertMany(ctx, docs)
			return err
		})
		if err == nil && d.index != nil {
			d.index.unread(notificationDocs(docs))
		}
	}
	if err != nil {
		if d.index != nil && errors.Is(err, commserver.ErrStorageUnavailable) {
			// Stored or not: nobody knows. Their counts come from the documents.
			users := make([]string, len(ns))
			for i, n := range ns {
				users[i] = n.UserID
			}
			d.index.markStale("user:", users...)
		}
		return nil, err
	}
	return out, nil
}

// Notifications returns the user's unexpired notifications, newest first.
func (d *DB) Notifications(ctx context.Context, userID string, now time.Time, skip, limit int) ([]notify.Notification, error) {
	var docs []notificationDoc
	err := d.all(ctx, "find notifications", &docs, func(ctx context.Context) (*mongo.Cursor, error) {
		return d.db.Collection(colNotifications).Find(ctx, ofUser(userID, now),
			options.Find().SetSort(notificationsNewestFirst).SetSkip(int64(skip)).SetLimit(int64(limit)))
	})
	if err != nil {
		return nil, err
	}
	out := make([]notify.Notification, len(docs))
	for i, doc := range docs {
		out[i] = doc.notification()
	}
	return out, nil
}

// CountNotifications counts the user's unexpired notifications and the
// unread among them, in one pass ($group by isRead).
func (d *DB) CountNotifications(ctx context.Context, userID string, now time.Time) (total, unread int64, err error) {
	var rows []struct {
		IsRead any   `bson:"_id"`
		N      int64 `bson:"n"`
	}
	err = d.all(ctx, "count notifications", &rows, func(ctx context.Context) (*mongo.Cursor, error) {
		return d.db.Collection(colNotifications).Aggregate(ctx, mongo.Pipeline{
			{{Key: "$match", Value: ofUser(userID, now)}},
			{{Key: "$group", Value: bson.M{"_id": "$isRead", "n": bson.M{"$sum": 1}}}},
		})
	})
	if err != nil {
		return 0, 0, err
	}
	for _, r := range rows {
		total += r.N
		if r.IsRead == false {
			unread += r.N
		}
	}
	return total, unread, nil
}

// CountUnread counts the unread, unexpired notifications of each user in
// one query; users without any are absent from the map (their count is 0).
// A reconnect storm asks for thousands of counts a second: one query for
// many users is what keeps the store from queueing them one by one.
func (d *DB) CountUnread(ctx context.Context, userIDs []string, now time.Time) (map[string]int64, error) {
	counts := make(map[string]int64, len(userIDs))
	if d.index != nil {
		// The embedded store's index has the counts; only stale users are counted from the documents.
		var rest []string
		for _, u := range userIDs {
			if n, ok := d.index.unreadCount(ctx, u, now); ok {
				if n > 0 {
					counts[u] = n
				}
			} else {
				rest = append(rest, u)
			}
		}
		userIDs = rest
	}
	if len(userIDs) == 0 {
		return counts, nil
	}
	match := unexpired(now)
	match["isRead"] = false
	match["userId"] = bson.M{"$in": idValues(userIDs)}
	var rows []struct {
		UserID any   `bson:"_id"`
		N      int64 `bson:"n"`
	}
	err := d.all(ctx, "count unread notifications", &rows, func(ctx context.Context) (*mongo.Cursor, error) {
		return d.db.Collection(colNotifications).Aggregate(ctx, mongo.Pipeline{
			{{Key: "$match", Value: match}},
			{{Key: "$group", Value: bson.M{"_id": "$userId", "n": bson.M{"$sum": 1}}}},
		})
	})
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		counts[idString(r.UserID)] = r.N
	}
	return counts, nil
}

func notificationNotFound(id string) error {
	return &commserver.Error{Code: commserver.CodeNotFound, Field: "id", Message: "no notification " + id}
}

// notificationOf reads a notification by _id alone (an index search on the
// embedded store too) and checks in Go that it is the user's and unexpired:
// what the embedded store would otherwise find by reading every notification.
func (d *DB) notificationOf(ctx context.Context, userID string, oid bson.ObjectID, now time.Time) (notificationDoc, error) {
	var doc notificationDoc
	err := d.call(ctx, "find notification", func(ctx context.Context) error {
		return d.db.Collection(colNotifications).FindOne(ctx, bson.M{"_id": oid}).Decode(&doc)
	})
	if errors.Is(err, mongo.ErrNoDocuments) ||
		(err == nil && (idString(doc.UserID) != userID || (doc.ExpiresAt != nil && !doc.ExpiresAt.After(now)))) {
		return doc, notificationNotFound(oid.Hex())
	}
	return doc, err
}

// changedUnread updates the index after a change to one of the user's
// notifications: on success, it is no longer unread; with no answer, the
// user's count comes from the documents from now on.
func (d *DB) changedUnread(userID string, oid bson.ObjectID, err error) {
	switch {
	case d.index == nil:
	case err == nil:
		d.index.read(userID, oid)
	case errors.Is(err, commserver.ErrStorageUnavailable):
		d.index.markStale("user:", userID)
	}
}

// MarkNotificationRead sets isRead and readAt on the user's notification, if it was unread.
func (d *DB) MarkNotificationRead(ctx context.Context, userID, id string, now time.Time) (notify.Notification, bool, error) {
	oid, err := objectID("id", id)
	if err != nil {
		return notify.Notification{}, false, err
	}
	now = now.UTC().Truncate(time.Millisecond)
	if d.index != nil {
		doc, err := d.notificationOf(ctx, userID, oid, now)
		if err != nil || doc.IsRead {
			return doc.notification(), false, err
		}
		err = d.call(ctx, "mark notification read", func(ctx context.Context) error {
			res, err := d.db.Collection(colNotifications).UpdateOne(ctx, bson.M{"_id": oid},
				bson.M{"$set": bson.M{"isRead": true, "readAt": now, "updatedAt": now}})
			if err == nil && res.MatchedCount == 0 {
				return notificationNotFound(id) // deleted meanwhile
			}
			return err
		})
		d.changedUnread(userID, oid, err)
		if err != nil {
			return notify.Notification{}, false, err
		}
		doc.IsRead, doc.ReadAt, doc.UpdatedAt = true, &now, now
		return doc.notification(), true, nil
	}
	filter := ofUser(userID, now)
	filter["_id"] = oid
	unread := ofUser(userID, now)
	unread["_id"], unread["isRead"] = oid, false
	var doc notificationDoc
	err = d.call(ctx, "mark notification read", func(ctx context.Context) error {
		return d.db.Collection(colNotifications).FindOneAndUpdate(ctx, unread,
			bson.M{"$set": bson.M{"isRead": true, "readAt": now, "updatedAt": now}},
			options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&doc)
	})
	if err == nil {
		return doc.notification(), true, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return notify.Notification{}, false, err
	}
	// Not unread: read already, or not the user's (or expired, or absent).
	err = d.call(ctx, "find notification", func(ctx context.Context) error {
		return d.db.Collection(colNotifications).FindOne(ctx, filter).Decode(&doc)
	})
	if errors.Is(err, mongo.ErrNoDocuments) {
		return notify.Notification{}, false, notificationNotFound(id)
	}
	if err != nil {
		return notify.Notification{}, false, err
	}
	return doc.notification(), false, nil
}

// MarkAllNotificationsRead marks every unread, unexpired notification of the user read.
func (d *DB) MarkAllNotificationsRead(ctx context.Context, userID string, now time.Time) (int64, error) {
	now = now.UTC().Truncate(time.Millisecond)
	if d.index != nil {
		// One update by _id per unread notification the index knows of: a
		// filter on userId would read every notification of every user.
		if ids, ok := d.index.unreadIDs(ctx, userID, now); ok {
			var n int64
			for _, oid := range ids {
				err := d.call(ctx, "mark notification read", func(ctx context.Context) error {
					res, err := d.db.Collection(colNotifications).UpdateOne(ctx, bson.M{"_id": oid},
						bson.M{"$set": bson.M{"isRead": true, "readAt": now, "updatedAt": now}})
					if err == nil {
						n += res.ModifiedCount
					}
					return err
				})
				d.changedUnread(userID, oid, err)
				if err != nil {
					return n, err
				}
			}
			return n, nil
		}
	}
	filter := ofUser(userID, now)
	filter["isRead"] = false
	var n int64
	err := d.call(ctx, "mark all notifications read", func(ctx context.Context) error {
		res, err := d.db.Collection(colNotifications).UpdateMany(ctx, filter,
			bson.M{"$set": bson.M{"isRead": true, "readAt": now, "updatedAt": now}})
		if err == nil {
			n = res.ModifiedCount
		}
		return err
	})
	return n, err
}

// DeleteNotification deletes the user's unexpired notification and returns it.
func (d *DB) DeleteNotification(ctx context.Context, userID, id string, now time.Time) (notify.Notification, error) {
	oid, err := objectID("id", id)
	if err != nil {
		return notify.Notification{}, err
	}
	if d.index != nil {
		doc, err := d.notificationOf(ctx, userID, oid, now)
		if err != nil {
			return notify.Notification{}, err
		}
		err = d.call(ctx, "delete notification", func(ctx context.Context) error {
			res, err := d.db.Collection(colNotifications).DeleteOne(ctx, bson.M{"_id": oid})
			if err == nil && res.DeletedCount == 0 {
				return notificationNotFound(id) // deleted meanwhile
			}
			return err
		})
		d.changedUnread(userID, oid, err)
		if err != nil {
			return notify.Notification{}, err
		}
		return doc.notification(), nil
	}
	filter := ofUser(userID, now)
	filter["_id"] = oid
	var doc notificationDoc
	err = d.call(ctx, "delete notification", func(ctx context.Context) error {
		return d.db.Collection(colNotifications).FindOneAndDelete(ctx, filter).Decode(&doc)
	})
	if errors.Is(err, mongo.ErrNoDocuments) {
		return notify.Notification{}, notificationNotFound(id)
	}
	if err != nil {
		return notify.Notification{}, err
	}
	return doc.notification(), nil
}

// DeleteOldReadNotifications deletes read notifications created before before.
func (d *DB) DeleteOldReadNotifications(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := d.call(ctx, "delete old read notifications", func(ctx context.Context) error {
		res, err := d.db.Collection(colNotifications).DeleteMany(ctx,
			bson.M{"isRead": true, "createdAt": bson.M{"$lt": before.UTC()}})
		if err == nil {
			n = res.DeletedCount
		}
		return err
	})
	return n, err
}

// DeleteExpiredNotifications deletes notifications whose expiresAt is not
// after now (the TTL index's work, for servers without a TTL monitor) and
// returns the users who lost an unread one.
func (d *DB) DeleteExpiredNotifications(ctx context.Context, now time.Time) ([]string, int64, error) {
	expired := bson.M{"expiresAt": bson.M{"$lte": now.UTC()}}
	var rows []struct {
		UserID any `bson:"_id"`
	}
	err := d.all(ctx, "users with expired notifications", &rows, func(ctx context.Context) (*mongo.Cursor, error) {
		return d.db.Collection(colNotifications).Aggregate(ctx, mongo.Pipeline{
			{{Key: "$match", Value: bson.M{"expiresAt": expired["expiresAt"], "isRead": false}}},
			{{Key: "$group", Value: bson.M{"_id": "$userId"}}},
		})
	})
	if err != nil {
		return nil, 0, err
	}
	var n int64
	err = d.call(ctx, "delete expired notifications", func(ctx context.Context) error {
		res, err := d.db.Collection(colNotifications).DeleteMany(ctx, expired)
		if err == nil {
			n = res.DeletedCount
		}
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	users := make([]string, len(rows))
	for i, r := range rows {
		users[i] = idString(r.UserID)
	}
	if d.index != nil {
		d.index.expired(users, now)
	}
	return users, n, nil
}

// NotificationContact reads the user's phoneNumber and smsNotificationEnabled
// from users (the fields the seed's scheduler used). It never writes users.
func (d *DB) NotificationContact(ctx context.Context, userID string) (notify.Contact, error) {
	var u struct {
		PhoneNumber any `bson:"phoneNumber"`
		SMSEnabled  any `bson:"smsNotificationEnabled"`
	}
	err := d.call(ctx, "find user contact", func(ctx context.Context) error {
		return d.db.Collection(colUsers).FindOne(ctx, bson.M{"_id": idValue(userID)},
			options.FindOne().SetProjection(bson.M{"phoneNumber": 1, "smsNotificationEnabled": 1})).Decode(&u)
	})
	if errors.Is(err, mongo.ErrNoDocuments) {
		return notify.Contact{}, nil
	}
	if err != nil {
		return notify.Contact{}, err
	}
	phone, _ := u.PhoneNumber.(string)
	enabled, _ := u.SMSEnabled.(bool)
	return notify.Contact{PhoneNumber: phone, SMSEnabled: enabled}, nil
}

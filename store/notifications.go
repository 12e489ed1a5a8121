package store

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

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

// UnreadCount counts the user's unread, unexpired notifications.
func (d *DB) UnreadCount(ctx context.Context, userID string) (int64, error) {
	filter := unexpired(time.Now())
	filter["userId"] = idValue(userID)
	filter["isRead"] = false
	var n int64
	err := d.call(ctx, "count unread notifications", func(ctx context.Context) (err error) {
		n, err = d.db.Collection(colNotifications).CountDocuments(ctx, filter)
		return err
	})
	return n, err
}

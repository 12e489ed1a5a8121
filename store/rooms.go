package store

import (
	"context"
	"errors"
	"slices"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/chat"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// roomDoc is a document of chatrooms (ours: the NestJS server had no room
// model). _id is the room id the app uses; members are user ids stored like
// senderId (ObjectIds where they look like one).
type roomDoc struct {
	ID        string    `bson:"_id"`
	Members   []any     `bson:"members"`
	CreatedAt time.Time `bson:"createdAt"`
	UpdatedAt time.Time `bson:"updatedAt"`
}

func (r roomDoc) room() chat.Room {
	out := chat.Room{ID: r.ID, Members: make([]string, len(r.Members)), CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	for i, m := range r.Members {
		out.Members[i] = idString(m)
	}
	return out
}

// Room returns a room with its members.
func (d *DB) Room(ctx context.Context, roomID string) (chat.Room, error) {
	var doc roomDoc
	err := d.call(ctx, "find room", func(ctx context.Context) error {
		return d.db.Collection(colRooms).FindOne(ctx, bson.M{"_id": roomID}).Decode(&doc)
	})
	if errors.Is(err, mongo.ErrNoDocuments) {
		return chat.Room{}, commserver.Errorf(commserver.CodeNotFound, "chat room %s does not exist", roomID)
	}
	if err != nil {
		return chat.Room{}, err
	}
	return doc.room(), nil
}

// PutRoom upserts the room's member list and returns the members it had before.
func (d *DB) PutRoom(ctx context.Context, roomID string, members []string) (chat.Room, []string, error) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	var before roomDoc
	err := d.call(ctx, "put room", func(ctx context.Context) error {
		return d.db.Collection(colRooms).FindOneAndUpdate(ctx, bson.M{"_id": roomID},
			bson.M{"$set": bson.M{"members": idValues(members), "updatedAt": now}, "$setOnInsert": bson.M{"createdAt": now}},
			options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.Before)).Decode(&before)
	})
	created := errors.Is(err, mongo.ErrNoDocuments)
	if err != nil && !created {
		return chat.Room{}, nil, err
	}
	room := chat.Room{ID: roomID, Members: members, CreatedAt: now, UpdatedAt: now}
	if !created {
		room.CreatedAt = before.CreatedAt.UTC()
	}
	return room, before.room().Members, nil
}

// RoomsOfUsers lists, for each user, the ids of up to limit rooms the user
// belongs to, in one query (users in no room are absent). Rooms come in _id
// order, so a user in more than limit rooms always gets the same ones.
func (d *DB) RoomsOfUsers(ctx context.Context, userIDs []string, limit int) (map[string][]string, error) {
	out := make(map[string][]string, len(userIDs))
	if len(userIDs) == 0 {
		return out, nil
	}
	var docs []roomDoc
	err := d.all(ctx, "rooms of users", &docs, func(ctx context.Context) (*mongo.Cursor, error) {
		return d.db.Collection(colRooms).Find(ctx, bson.M{"members": bson.M{"$in": idValues(userIDs)}},
			options.Find().SetProjection(bson.M{"_id": 1, "members": 1}).SetSort(bson.D{{Key: "_id", Value: 1}}))
	})
	if err != nil {
		return nil, err
	}
	asked := make(map[string]bool, len(userIDs))
	for _, u := range userIDs {
		asked[u] = true
	}
	for _, doc := range docs {
		for _, m := range doc.Members {
			if u := idString(m); asked[u] && len(out[u]) < limit && !slices.Contains(out[u], doc.ID) {
				out[u] = append(out[u], doc.ID)
			}
		}
	}
	return out, nil
}

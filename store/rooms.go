package store

import (
	"context"
	"errors"
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

// RoomsOfUser lists the ids of up to limit rooms the user belongs to.
func (d *DB) RoomsOfUser(ctx context.Context, userID string, limit int) ([]string, error) {
	var docs []struct {
		ID string `bson:"_id"`
	}
	err := d.all(ctx, "rooms of user", &docs, func(ctx context.Context) (*mongo.Cursor, error) {
		return d.db.Collection(colRooms).Find(ctx, bson.M{"members": idValue(userID)},
			options.Find().SetProjection(bson.M{"_id": 1}).SetLimit(int64(limit)))
	})
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	return ids, nil
}

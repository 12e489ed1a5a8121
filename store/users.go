package store

import (
	"context"
	"errors"
	"strings"

	"github.com/fitmate/commserver/chat"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The users collection belongs to the main backend: this package reads it and never writes it.

// maxUsersByID is the most users the embedded store looks up one by one.
const maxUsersByID = 64

// usersByID returns the users documents with these _ids, keyed by id string.
func (d *DB) usersByID(ctx context.Context, ids []any, projection bson.M) (map[string]bson.M, error) {
	out := make(map[string]bson.M, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	if d.embedded != nil && len(ids) <= maxUsersByID {
		// On the embedded store an $in reads every user; a lookup by _id
		// alone is an index search.
		for _, id := range ids {
			var u bson.M
			err := d.call(ctx, "find user", func(ctx context.Context) error {
				opts := options.FindOne()
				if projection != nil {
					opts.SetProjection(projection)
				}
				return d.db.Collection(colUsers).FindOne(ctx, bson.M{"_id": id}, opts).Decode(&u)
			})
			if errors.Is(err, mongo.ErrNoDocuments) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out[idString(u["_id"])] = u
		}
		return out, nil
	}
	var docs []bson.M
	err := d.call(ctx, "find users", func(ctx context.Context) error {
		opts := options.Find()
		if projection != nil {
			opts.SetProjection(projection)
		}
		cur, err := d.db.Collection(colUsers).Find(ctx, bson.M{"_id": bson.M{"$in": ids}}, opts)
		if err != nil {
			return err
		}
		return cur.All(ctx, &docs)
	})
	if err != nil {
		return nil, err
	}
	for _, u := range docs {
		out[idString(u["_id"])] = u
	}
	return out, nil
}

// populate sets Sender on each message from users, as Mongoose's
// populate('senderId', 'name email picture') did. A sender with no users
// document gets a reference with only its id (Mongoose gave null, which
// crashes a client reading senderId.name).
func (d *DB) populate(ctx context.Context, msgs []chat.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	seen := map[string]bool{}
	var ids []any
	for _, m := range msgs {
		if !seen[m.SenderID] {
			seen[m.SenderID] = true
			ids = append(ids, idValue(m.SenderID))
		}
	}
	users, err := d.usersByID(ctx, ids, bson.M{"name": 1, "email": 1, "picture": 1})
	if err != nil {
		return err
	}
	for i := range msgs {
		ref := &chat.UserRef{ID: msgs[i].SenderID}
		if u, ok := users[msgs[i].SenderID]; ok {
			ref.Name, ref.Email, ref.Picture = optString(u["name"]), optString(u["email"]), optString(u["picture"])
		}
		msgs[i].Sender = ref
	}
	return nil
}

func optString(v any) *string {
	if s, ok := v.(string); ok {
		return &s
	}
	return nil
}

// publicUser is a users document without what must not leave the server.
func publicUser(u bson.M) map[string]any {
	out := make(map[string]any, len(u))
	for k, v := range u {
		switch strings.ToLower(k) {
		case "password", "passwordhash", "salt", "refreshtoken", "refreshtokens", "tokens", "otp":
			continue
		}
		if k == "_id" {
			v = idString(v)
		}
		out[k] = v
	}
	return out
}

// UserIsAdmin reports whether the user's document says role admin (or roles contains admin).
func (d *DB) UserIsAdmin(ctx context.Context, userID string) (bool, error) {
	var u bson.M
	err := d.call(ctx, "find user role", func(ctx context.Context) error {
		return d.db.Collection(colUsers).FindOne(ctx, bson.M{"_id": idValue(userID)},
			options.FindOne().SetProjection(bson.M{"role": 1, "roles": 1})).Decode(&u)
	})
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return HasAdminRole(u["role"]) || HasAdminRole(u["roles"]), nil
}

// HasAdminRole reports whether a role value (a string or a list of them)
// names admin, case-insensitively, with or without Spring's ROLE_ prefix.
func HasAdminRole(v any) bool {
	switch t := v.(type) {
	case string:
		r := strings.ToLower(strings.TrimSpace(t))
		return r == "admin" || r == "role_admin"
	case []any:
		for _, e := range t {
			if HasAdminRole(e) {
				return true
			}
		}
	case bson.A:
		return HasAdminRole([]any(t))
	case []string:
		for _, e := range t {
			if HasAdminRole(e) {
				return true
			}
		}
	}
	return false
}

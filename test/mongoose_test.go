package test

import (
	"context"
	"slices"
	"sort"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The server shares MongoDB with the main backend and, during the migration,
// with the NestJS server: it reads users (for populate and the admin role),
// counts notifications, writes chatmessages exactly as Mongoose did, and
// reads what Mongoose wrote.
func TestSharedDatabase(t *testing.T) {
	srv, db := withMongo(t)
	ctx := context.Background()
	insertUser(t, db, alice, bson.M{"name": "Alice", "email": "alice@example.com", "picture": "https://cdn.example.com/a.png",
		"password": "$2a$10$secrethash", "phoneNumber": "+821012345678", "role": "user"})
	insertUser(t, db, bob, bson.M{"name": "Bob", "email": "bob@example.com"})
	insertUser(t, db, admin, bson.M{"name": "Admin", "email": "admin@example.com", "role": "admin"})
	srv.putRoom(t, "room-s", alice, bob)

	// Two unread notifications for alice, one read, one expired, one for bob.
	now := time.Now().UTC()
	_, err := db.Collection("notifications").InsertMany(ctx, []any{
		bson.M{"userId": oid(t, alice), "title": "t", "message": "m", "type": "system", "isRead": false, "priority": "normal", "createdAt": now},
		bson.M{"userId": oid(t, alice), "title": "t", "message": "m", "type": "goal_achieved", "isRead": false, "priority": "high", "createdAt": now},
		bson.M{"userId": oid(t, alice), "title": "t", "message": "m", "type": "system", "isRead": true, "priority": "normal", "createdAt": now},
		bson.M{"userId": oid(t, alice), "title": "t", "message": "m", "type": "system", "isRead": false, "priority": "normal", "createdAt": now,
			"expiresAt": now.Add(-time.Hour)},
		bson.M{"userId": oid(t, bob), "title": "t", "message": "m", "type": "system", "isRead": false, "priority": "normal", "createdAt": now},
	})
	if err != nil {
		t.Fatal(err)
	}

	// A message as the NestJS server stored it: ObjectIds, no clientMessageId,
	// no metadata, readBy holding an ObjectId, an older timestamp.
	oldID := bson.NewObjectID()
	old := now.Add(-time.Hour).Truncate(time.Millisecond)
	_, err = db.Collection("chatmessages").InsertOne(ctx, bson.D{
		{Key: "_id", Value: oldID}, {Key: "chatRoomId", Value: "room-s"}, {Key: "senderId", Value: oid(t, bob)},
		{Key: "message", Value: "from the NestJS days"}, {Key: "messageType", Value: "text"}, {Key: "timestamp", Value: old},
		{Key: "readBy", Value: bson.A{oid(t, alice)}}, {Key: "isDeleted", Value: false},
		{Key: "createdAt", Value: old}, {Key: "updatedAt", Value: old}, {Key: "__v", Value: int32(0)},
	})
	if err != nil {
		t.Fatal(err)
	}

	c := newJS(t, srv)
	c.connect("alice", token(alice))
	if n := c.waitEvent("alice", "unreadNotificationCount"); n != float64(2) {
		t.Errorf("alice's unreadNotificationCount %v, want 2 (one read, one expired)", n)
	}
	c.connect("bob", token(bob))
	if n := c.waitEvent("bob", "unreadNotificationCount"); n != float64(1) {
		t.Errorf("bob's unreadNotificationCount %v, want 1", n)
	}
	wantOK(t, "alice joins", c.emitAck("alice", "joinChat", map[string]any{"chatRoomId": "room-s"}))
	c.waitEvent("alice", "chatHistory")
	sent := send(t, c, "alice", "room-s", "hello from Go", "clientMessageId", "go-1", "metadata", map[string]any{"width": 640})
	c.waitEvent("alice", "newMessage")

	t.Run("chatmessages document as Mongoose wrote it", func(t *testing.T) {
		var raw bson.D
		if err := db.Collection("chatmessages").FindOne(ctx, bson.M{"_id": oid(t, sent["_id"].(string))}).Decode(&raw); err != nil {
			t.Fatal(err)
		}
		var keys []string
		types := map[string]string{}
		for _, e := range raw {
			keys = append(keys, e.Key)
			types[e.Key] = bsonType(e.Value)
		}
		want := map[string]string{
			"_id": "objectId", "chatRoomId": "string", "senderId": "objectId", "message": "string", "messageType": "string",
			"timestamp": "date", "readBy": "array", "isDeleted": "bool", "metadata": "object",
			"clientMessageId": "string", "clientMessageKey": "string", "createdAt": "date", "updatedAt": "date", "__v": "int",
		}
		sort.Strings(keys)
		var wantKeys []string
		for k := range want {
			wantKeys = append(wantKeys, k)
		}
		sort.Strings(wantKeys)
		if !slices.Equal(keys, wantKeys) {
			t.Errorf("fields %v, want %v", keys, wantKeys)
		}
		for k, ty := range want {
			if types[k] != ty {
				t.Errorf("%s is %s, want %s", k, types[k], ty)
			}
		}
		m := bson.M{}
		for _, e := range raw {
			m[e.Key] = e.Value
		}
		if m["senderId"] != oid(t, alice) || m["isDeleted"] != false || m["__v"] != int32(0) || len(m["readBy"].(bson.A)) != 0 {
			t.Errorf("document %v", m)
		}
	})

	t.Run("chatHistory populates senders and reads old documents", func(t *testing.T) {
		c.emit("bob", "joinChat", map[string]any{"chatRoomId": "room-s"})
		h, _ := c.waitEvent("bob", "chatHistory").([]any)
		if len(h) != 2 {
			t.Fatalf("chatHistory %v", h)
		}
		newest, oldest := h[0].(map[string]any), h[1].(map[string]any)
		if newest["message"] != "hello from Go" || oldest["message"] != "from the NestJS days" {
			t.Fatalf("chatHistory not newest first: %v", texts(h))
		}
		wantSender := map[string]any{"_id": alice, "name": "Alice", "email": "alice@example.com", "picture": "https://cdn.example.com/a.png"}
		if s := newest["senderId"].(map[string]any); !equalMaps(s, wantSender) {
			t.Errorf("populated senderId %v, want exactly %v", s, wantSender)
		}
		if s := oldest["senderId"].(map[string]any); !equalMaps(s, map[string]any{"_id": bob, "name": "Bob", "email": "bob@example.com"}) {
			t.Errorf("populated senderId of the old message %v", s)
		}
		if oldest["_id"] != oldID.Hex() || oldest["messageType"] != "text" || oldest["isDeleted"] != false ||
			!slices.Equal(anyStrings(oldest["readBy"]), []string{alice}) || oldest["__v"] != float64(0) {
			t.Errorf("old message read back as %v", oldest)
		}
		if _, ok := oldest["clientMessageId"]; ok {
			t.Errorf("old message grew a clientMessageId: %v", oldest)
		}
		if ts, err := time.Parse(time.RFC3339Nano, oldest["timestamp"].(string)); err != nil || !ts.Equal(old) {
			t.Errorf("old timestamp %v, want %v", oldest["timestamp"], old)
		}
	})

	t.Run("admin by the users document", func(t *testing.T) {
		// No role claim in the token: the users document says admin.
		c.connect("admin", token(admin))
		ack := c.emitAck("admin", "joinAsAdmin")
		wantOK(t, "joinAsAdmin", ack)
		users, _ := c.waitEvent("admin", "allChatUsers").([]any)
		if len(users) != 2 {
			t.Fatalf("allChatUsers %v, want alice and bob", users)
		}
		first := users[0].(map[string]any)
		info, _ := first["userInfo"].(map[string]any)
		if first["_id"] != alice || first["lastMessage"] != "hello from Go" || first["messageCount"] != float64(1) || info["name"] != "Alice" {
			t.Errorf("allChatUsers[0] %v", first)
		}
		if _, leaked := info["password"]; leaked {
			t.Errorf("allChatUsers leaks the password hash: %v", info)
		}
		if second := users[1].(map[string]any); second["_id"] != bob || second["lastMessage"] != "from the NestJS days" {
			t.Errorf("allChatUsers[1] %v", second)
		}
		// And by REST.
		code, body := srv.api(t, "GET", "/chat/users", bearerOf(admin), nil)
		if code != 200 || len(body["users"].([]any)) != 2 {
			t.Errorf("GET /chat/users as admin: %d %v", code, body)
		}
		if code, body := srv.api(t, "GET", "/chat/users", bearerOf(alice), nil); code != 403 {
			t.Errorf("GET /chat/users as alice: %d %v", code, body)
		}
		// The admin's socket hears every room.
		send(t, c, "bob", "room-s", "admins hear this")
		if m := c.waitEvent("admin", "newMessage").(map[string]any); m["message"] != "admins hear this" {
			t.Errorf("admin newMessage %v", m)
		}
	})

	t.Run("a user document with role user is not admin", func(t *testing.T) {
		wantCode(t, "alice joinAsAdmin", c.emitAck("alice", "joinAsAdmin"), "FORBIDDEN")
	})
}

func bsonType(v any) string {
	switch v.(type) {
	case bson.ObjectID:
		return "objectId"
	case string:
		return "string"
	case bson.DateTime:
		return "date"
	case bson.A:
		return "array"
	case bool:
		return "bool"
	case bson.D, bson.M:
		return "object"
	case int32:
		return "int"
	case int64:
		return "long"
	case float64:
		return "double"
	default:
		return "other"
	}
}

func equalMaps(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func anyStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, len(list))
	for i, e := range list {
		out[i], _ = e.(string)
	}
	return out
}

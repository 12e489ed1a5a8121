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

var _ chat.Store = (*DB)(nil)

// messageDoc is a document of chatmessages, as Mongoose's ChatMessage model
// wrote it. clientMessageId and clientMessageKey are ours: Mongoose ignores
// fields its schema does not name.
type messageDoc struct {
	ID               bson.ObjectID  `bson:"_id"`
	ChatRoomID       string         `bson:"chatRoomId"`
	SenderID         any            `bson:"senderId"`
	Message          string         `bson:"message"`
	MessageType      string         `bson:"messageType"`
	Timestamp        time.Time      `bson:"timestamp"`
	ReadBy           []any          `bson:"readBy"`
	IsDeleted        bool           `bson:"isDeleted"`
	ReplyTo          *bson.ObjectID `bson:"replyTo,omitempty"`
	Metadata         any            `bson:"metadata,omitempty"`
	ClientMessageID  string         `bson:"clientMessageId,omitempty"`
	ClientMessageKey string         `bson:"clientMessageKey,omitempty"`
	CreatedAt        time.Time      `bson:"createdAt"`
	UpdatedAt        time.Time      `bson:"updatedAt"`
	V                int32          `bson:"__v"`
}

func newMessageDoc(m chat.Message) messageDoc {
	d := messageDoc{
		ID: bson.NewObjectID(), ChatRoomID: m.ChatRoomID, SenderID: idValue(m.SenderID), Message: m.Text,
		MessageType: m.Type, Timestamp: m.Timestamp, ReadBy: idValues(m.ReadBy), IsDeleted: m.IsDeleted,
		ClientMessageID: m.ClientMessageID, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt,
	}
	if m.Metadata != nil {
		d.Metadata = bsonValue(m.Metadata)
	}
	if m.ReplyTo != "" {
		if oid, err := bson.ObjectIDFromHex(m.ReplyTo); err == nil {
			d.ReplyTo = &oid
		}
	}
	if m.ClientMessageID != "" {
		d.ClientMessageKey = clientMessageKey(m.ChatRoomID, m.ClientMessageID, m.SenderID)
	}
	return d
}

// clientMessageKey scopes a client's message id to its room and sender. Room
// ids and client ids cannot hold '/', so the key is unambiguous.
func clientMessageKey(room, clientID, sender string) string {
	return room + "/" + clientID + "/" + sender
}

func (d messageDoc) message() chat.Message {
	m := chat.Message{
		ID: d.ID.Hex(), ChatRoomID: d.ChatRoomID, SenderID: idString(d.SenderID), Text: d.Message,
		Type: d.MessageType, Timestamp: d.Timestamp.UTC(), IsDeleted: d.IsDeleted,
		ClientMessageID: d.ClientMessageID, CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(),
		ReadBy: make([]string, len(d.ReadBy)),
	}
	if meta, ok := plainValue(d.Metadata).(map[string]any); ok {
		m.Metadata = meta
	}
	if m.Type == "" {
		m.Type = chat.TypeText
	}
	for i, r := range d.ReadBy {
		m.ReadBy[i] = idString(r)
	}
	if d.ReplyTo != nil {
		m.ReplyTo = d.ReplyTo.Hex()
	}
	return m
}

// InsertMessage stores m through the write batcher: concurrent senders share
// one insertMany, preceded by the messages' outbox entries. done runs once:
// when the database acknowledged the write (on the batcher's goroutine, in
// submission order), or with STORAGE_UNAVAILABLE at the deadline counted
// from this call (see chat.Store).
func (d *DB) InsertMessage(ctx context.Context, m chat.Message, done func(chat.Message, bool, error)) {
	doc := newMessageDoc(m)
	if doc.ClientMessageKey != "" && !d.indexesCreated() {
		// Idempotency rests on the unique clientMessageKey index: without it
		// a retry would store a second message. When the database refuses
		// the index itself (duplicates already stored), the loop logs it and
		// messages still flow.
		cctx, cancel := context.WithDeadline(ctx, d.deadlineOf(ctx))
		err := d.createIndexes(cctx)
		cancel()
		if errors.Is(err, commserver.ErrStorageUnavailable) {
			done(chat.Message{}, false, err)
			return
		}
	}
	deadline := d.deadlineOf(ctx)
	if d.memOut != nil {
		d.memOut.opened(doc.ID, doc.CreatedAt)
	}
	d.messages.submit(ctx, doc, func(err error) {
		switch {
		case err == nil:
			done(doc.message(), true, nil)
		case !errors.Is(err, errDuplicate):
			d.settledInMemory(doc.ID, false, err)
			done(chat.Message{}, false, err)
		default:
			// Rare, and it needs a read: off the batcher's goroutine.
			go func() {
				rctx, cancel := context.WithDeadline(context.Background(), deadline)
				defer cancel()
				stored, created, err := d.resolveDuplicate(rctx, doc)
				if created {
					d.indexLate([]messageDoc{doc}) // landed on an attempt whose answer was lost
				}
				d.settledInMemory(doc.ID, created, err)
				done(stored, created, err)
			}()
		}
	})
}

// resolveDuplicate handles a duplicate key: either a retried insert of ours
// had landed (it is stored), or this client message id was used before (the
// original is returned). Both are _id lookups on the embedded store, whose
// index maps client keys to message ids.
func (d *DB) resolveDuplicate(ctx context.Context, doc messageDoc) (chat.Message, bool, error) {
	existing, err := d.messageByID(ctx, doc.ID)
	if err == nil {
		return existing.message(), true, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) || doc.ClientMessageKey == "" {
		return chat.Message{}, false, err
	}
	if d.index != nil {
		id, found, err := d.index.messageOfKey(ctx, doc.ClientMessageKey)
		if err != nil {
			return chat.Message{}, false, err
		}
		if found {
			if existing, err = d.messageByID(ctx, id); err == nil {
				return existing.message(), false, nil
			}
		}
	}
	err = d.call(ctx, "find duplicate message", func(ctx context.Context) error {
		return d.db.Collection(colMessages).FindOne(ctx, bson.M{"clientMessageKey": doc.ClientMessageKey}).Decode(&existing)
	})
	if err != nil {
		return chat.Message{}, false, err
	}
	return existing.message(), false, nil
}

// messageByID reads one message by _id (an index search everywhere).
func (d *DB) messageByID(ctx context.Context, id bson.ObjectID) (messageDoc, error) {
	var doc messageDoc
	err := d.call(ctx, "find message", func(ctx context.Context) error {
		return d.db.Collection(colMessages).FindOne(ctx, bson.M{"_id": id}).Decode(&doc)
	})
	return doc, err
}

func (d *DB) findMessages(ctx context.Context, op string, filter bson.M, opts *options.FindOptionsBuilder) ([]chat.Message, error) {
	var docs []messageDoc
	err := d.call(ctx, op, func(ctx context.Context) error {
		cur, err := d.db.Collection(colMessages).Find(ctx, filter, opts)
		if err != nil {
			return err
		}
		return cur.All(ctx, &docs)
	})
	if err != nil {
		return nil, err
	}
	out := make([]chat.Message, len(docs))
	for i, doc := range docs {
		out[i] = doc.message()
	}
	return out, d.populate(ctx, out)
}

// visible selects a room's messages that are not deleted.
func visible(roomID string) bson.M {
	return bson.M{"chatRoomId": roomID, "isDeleted": bson.M{"$ne": true}}
}

var newestFirst = bson.D{{Key: "timestamp", Value: -1}, {Key: "_id", Value: -1}}
var oldestFirst = bson.D{{Key: "timestamp", Value: 1}, {Key: "_id", Value: 1}}

// RecentMessages returns the room's newest messages, newest first.
func (d *DB) RecentMessages(ctx context.Context, roomID string, limit int) ([]chat.Message, error) {
	if tail, total, _, ok := d.roomTail(ctx, roomID); ok {
		if live := liveOf(tail); len(live) >= limit || int64(len(tail)) >= total {
			return d.populated(ctx, live[:min(limit, len(live))])
		}
	}
	return d.findMessages(ctx, "recent messages", visible(roomID), options.Find().SetSort(newestFirst).SetLimit(int64(limit)))
}

// roomTail returns the embedded index's copy of the room's newest
// messages, newest first, deleted ones included, and the room's counts; ok
// is false without an index (MongoDB) or when the room must be read from the
// documents.
func (d *DB) roomTail(ctx context.Context, roomID string) (tail []messageDoc, total, live int64, ok bool) {
	if d.index == nil {
		return nil, 0, 0, false
	}
	return d.index.roomView(ctx, roomID)
}

// liveOf leaves out deleted messages.
func liveOf(msgs []messageDoc) []messageDoc {
	out := make([]messageDoc, 0, len(msgs))
	for _, m := range msgs {
		if !m.IsDeleted {
			out = append(out, m)
		}
	}
	return out
}

// populated turns documents into messages with their senders populated.
func (d *DB) populated(ctx context.Context, docs []messageDoc) ([]chat.Message, error) {
	out := make([]chat.Message, len(docs))
	for i, doc := range docs {
		out[i] = doc.message()
	}
	return out, d.populate(ctx, out)
}

// MessagesPage returns one page counted from the newest, oldest first, and the total.
func (d *DB) MessagesPage(ctx context.Context, roomID string, page, limit int) ([]chat.Message, int64, error) {
	skip := (page - 1) * limit
	if tail, total, live, ok := d.roomTail(ctx, roomID); ok {
		visibleTail := liveOf(tail)
		if len(visibleTail) >= skip+limit || int64(len(tail)) >= total {
			msgs, err := d.populated(ctx, visibleTail[min(skip, len(visibleTail)):min(skip+limit, len(visibleTail))])
			slices.Reverse(msgs)
			return msgs, live, err
		}
	}
	var total int64
	err := d.call(ctx, "count messages", func(ctx context.Context) (err error) {
		total, err = d.db.Collection(colMessages).CountDocuments(ctx, visible(roomID))
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	msgs, err := d.findMessages(ctx, "page messages", visible(roomID),
		options.Find().SetSort(newestFirst).SetSkip(int64(skip)).SetLimit(int64(limit)))
	slices.Reverse(msgs)
	return msgs, total, err
}

// cursor returns the (timestamp, _id) position of a message of the room.
// It looks the message up by _id alone (an index search on the embedded
// store too) and checks its room.
func (d *DB) cursor(ctx context.Context, field, roomID, id string) (messageDoc, error) {
	oid, err := objectID(field, id)
	if err != nil {
		return messageDoc{}, err
	}
	doc, err := d.messageByID(ctx, oid)
	if errors.Is(err, mongo.ErrNoDocuments) || (err == nil && doc.ChatRoomID != roomID) {
		return messageDoc{}, &commserver.Error{Code: commserver.CodeNotFound, Field: field,
			Message: "no message " + id + " in chat room " + roomID}
	}
	return doc, err
}

// MessagesBefore reads backwards from a cursor message, ordered by
// (timestamp, _id) so that equal timestamps neither skip nor repeat.
func (d *DB) MessagesBefore(ctx context.Context, roomID, beforeID string, limit int) ([]chat.Message, bool, error) {
	c, err := d.cursor(ctx, "before", roomID, beforeID)
	if err != nil {
		return nil, false, err
	}
	if tail, total, _, ok := d.roomTail(ctx, roomID); ok {
		if i := slices.IndexFunc(tail, func(m messageDoc) bool { return m.ID == c.ID }); i >= 0 {
			older := liveOf(tail[i+1:])
			if len(older) > limit || int64(len(tail)) >= total {
				more := len(older) > limit
				msgs, err := d.populated(ctx, older[:min(limit, len(older))])
				slices.Reverse(msgs)
				return msgs, more, err
			}
		}
	}
	filter := visible(roomID)
	filter["$or"] = bson.A{
		bson.M{"timestamp": bson.M{"$lt": c.Timestamp}},
		bson.M{"timestamp": c.Timestamp, "_id": bson.M{"$lt": c.ID}},
	}
	msgs, err := d.findMessages(ctx, "messages before", filter, options.Find().SetSort(newestFirst).SetLimit(int64(limit+1)))
	if err != nil {
		return nil, false, err
	}
	more := len(msgs) > limit
	if more {
		msgs = msgs[:limit]
	}
	slices.Reverse(msgs)
	return msgs, more, nil
}

// MessagesAfter reads forwards from a cursor message, oldest first.
func (d *DB) MessagesAfter(ctx context.Context, roomID, afterID string, limit int) ([]chat.Message, error) {
	c, err := d.cursor(ctx, "since", roomID, afterID)
	if err != nil {
		return nil, err
	}
	if tail, _, _, ok := d.roomTail(ctx, roomID); ok {
		// The tail is the room's newest messages: holding the cursor, it
		// holds everything after it.
		if i := slices.IndexFunc(tail, func(m messageDoc) bool { return m.ID == c.ID }); i >= 0 {
			newer := liveOf(tail[:i])
			slices.Reverse(newer)
			return d.populated(ctx, newer[:min(limit, len(newer))])
		}
	}
	filter := visible(roomID)
	filter["$or"] = bson.A{
		bson.M{"timestamp": bson.M{"$gt": c.Timestamp}},
		bson.M{"timestamp": c.Timestamp, "_id": bson.M{"$gt": c.ID}},
	}
	return d.findMessages(ctx, "messages after", filter, options.Find().SetSort(oldestFirst).SetLimit(int64(limit)))
}

// Message returns one message by id.
func (d *DB) Message(ctx context.Context, id string) (chat.Message, error) {
	oid, err := objectID("messageId", id)
	if err != nil {
		return chat.Message{}, err
	}
	var doc messageDoc
	err = d.call(ctx, "find message", func(ctx context.Context) error {
		return d.db.Collection(colMessages).FindOne(ctx, bson.M{"_id": oid}).Decode(&doc)
	})
	if errors.Is(err, mongo.ErrNoDocuments) {
		return chat.Message{}, commserver.Errorf(commserver.CodeNotFound, "no message %s", id)
	}
	if err != nil {
		return chat.Message{}, err
	}
	return doc.message(), nil
}

// SoftDeleteMessage sets isDeleted and returns the message.
func (d *DB) SoftDeleteMessage(ctx context.Context, id string) (chat.Message, error) {
	oid, err := objectID("messageId", id)
	if err != nil {
		return chat.Message{}, err
	}
	var doc messageDoc
	now := time.Now().UTC().Truncate(time.Millisecond)
	err = d.call(ctx, "delete message", func(ctx context.Context) error {
		return d.db.Collection(colMessages).FindOneAndUpdate(ctx, bson.M{"_id": oid},
			bson.M{"$set": bson.M{"isDeleted": true, "updatedAt": now}},
			options.FindOneAndUpdate().SetReturnDocument(options.Before)).Decode(&doc)
	})
	if errors.Is(err, mongo.ErrNoDocuments) {
		return chat.Message{}, commserver.Errorf(commserver.CodeNotFound, "no message %s", id)
	}
	if err != nil {
		if d.index != nil && errors.Is(err, commserver.ErrStorageUnavailable) {
			d.index.distrust("a message delete got no answer")
		}
		return chat.Message{}, err
	}
	wasLive := !doc.IsDeleted
	doc.IsDeleted, doc.UpdatedAt = true, now
	if d.index != nil {
		d.index.deleted(doc, wasLive)
	}
	return doc.message(), nil
}

// MarkRoomRead adds userID to readBy of the room's messages from others (the seed's markMessagesAsRead).
func (d *DB) MarkRoomRead(ctx context.Context, roomID, userID string) (int64, error) {
	uid := idValue(userID)
	var n int64
	err := d.call(ctx, "mark room read", func(ctx context.Context) error {
		res, err := d.db.Collection(colMessages).UpdateMany(ctx,
			bson.M{"chatRoomId": roomID, "senderId": bson.M{"$ne": uid}, "readBy": bson.M{"$ne": uid}},
			bson.M{"$addToSet": bson.M{"readBy": uid}})
		if err == nil {
			n = res.ModifiedCount
		}
		return err
	})
	if d.index != nil {
		switch {
		case err == nil:
			d.index.readBy(roomID, uid)
		case errors.Is(err, commserver.ErrStorageUnavailable):
			d.index.markStale("room:", roomID)
		}
	}
	return n, err
}

// ChatUsers lists every sender with their last message and message count,
// newest first, with their users document (the seed's getAllChatUsers). On
// MongoDB it is the seed's aggregation; servers without $first or $lookup
// (FerretDB) get the same answer from simpler queries.
func (d *DB) ChatUsers(ctx context.Context) ([]chat.ChatUser, error) {
	pipeline := mongo.Pipeline{
		{{Key: "$match", Value: bson.M{"isDeleted": bson.M{"$ne": true}}}},
		{{Key: "$sort", Value: bson.D{{Key: "timestamp", Value: 1}}}},
		{{Key: "$group", Value: bson.M{
			"_id":             "$senderId",
			"lastMessage":     bson.M{"$last": "$message"},
			"lastMessageTime": bson.M{"$last": "$timestamp"},
			"messageCount":    bson.M{"$sum": 1},
		}}},
		{{Key: "$lookup", Value: bson.M{"from": colUsers, "localField": "_id", "foreignField": "_id", "as": "userInfo"}}},
		{{Key: "$unwind", Value: "$userInfo"}},
		{{Key: "$sort", Value: bson.D{{Key: "lastMessageTime", Value: -1}}}},
	}
	type row struct {
		ID              any       `bson:"_id"`
		LastMessage     string    `bson:"lastMessage"`
		LastMessageTime time.Time `bson:"lastMessageTime"`
		MessageCount    int64     `bson:"messageCount"`
		UserInfo        bson.M    `bson:"userInfo"`
	}
	var rows []row
	err := d.all(ctx, "chat users", &rows, func(ctx context.Context) (*mongo.Cursor, error) {
		return d.db.Collection(colMessages).Aggregate(ctx, pipeline)
	})
	if err != nil && isNotImplemented(err) {
		return d.chatUsersFallback(ctx)
	}
	if err != nil {
		return nil, err
	}
	out := make([]chat.ChatUser, len(rows))
	for i, r := range rows {
		out[i] = chat.ChatUser{ID: idString(r.ID), LastMessage: r.LastMessage, LastMessageTime: r.LastMessageTime.UTC(),
			MessageCount: r.MessageCount, UserInfo: publicUser(r.UserInfo)}
	}
	return out, nil
}

// chatUsersFallback answers ChatUsers with $group/$sum, one sorted find per
// sender and one users query: what FerretDB supports.
func (d *DB) chatUsersFallback(ctx context.Context) ([]chat.ChatUser, error) {
	type count struct {
		ID    any   `bson:"_id"`
		Count int64 `bson:"messageCount"`
	}
	var counts []count
	err := d.all(ctx, "chat users: counts", &counts, func(ctx context.Context) (*mongo.Cursor, error) {
		return d.db.Collection(colMessages).Aggregate(ctx, mongo.Pipeline{
			{{Key: "$match", Value: bson.M{"isDeleted": bson.M{"$ne": true}}}},
			{{Key: "$group", Value: bson.M{"_id": "$senderId", "messageCount": bson.M{"$sum": 1}}}},
		})
	})
	if err != nil {
		return nil, err
	}
	ids := make([]any, len(counts))
	for i, c := range counts {
		ids[i] = c.ID
	}
	users, err := d.usersByID(ctx, ids, nil)
	if err != nil {
		return nil, err
	}
	out := make([]chat.ChatUser, 0, len(counts))
	for _, c := range counts {
		info, ok := users[idString(c.ID)]
		if !ok {
			continue // $unwind drops senders without a users document
		}
		var last messageDoc
		err := d.call(ctx, "chat users: last message", func(ctx context.Context) error {
			return d.db.Collection(colMessages).FindOne(ctx,
				bson.M{"senderId": c.ID, "isDeleted": bson.M{"$ne": true}},
				options.FindOne().SetSort(newestFirst)).Decode(&last)
		})
		if err != nil {
			return nil, err
		}
		out = append(out, chat.ChatUser{ID: idString(c.ID), LastMessage: last.Message,
			LastMessageTime: last.Timestamp.UTC(), MessageCount: c.Count, UserInfo: publicUser(info)})
	}
	slices.SortFunc(out, func(a, b chat.ChatUser) int { return b.LastMessageTime.Compare(a.LastMessageTime) })
	return out, nil
}

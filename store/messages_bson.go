package store

import (
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// plainMessageDoc is messageDoc without MarshalBSON: the driver's reflection
// encodes it, for what the hand-written encoder leaves to it.
type plainMessageDoc messageDoc

// MarshalBSON writes the document as the driver's reflection would, byte
// for byte (FuzzMessageDocBSON), without reflection: every message is
// encoded once on its way into the store, and reflection was a third of
// the batcher's time. Field values it has no case for (metadata, an id that
// is neither an ObjectID nor a string) go to the reflection encoder whole.
func (d messageDoc) MarshalBSON() ([]byte, error) {
	if b, ok := d.appendBSON(make([]byte, 0, 256+len(d.Message)+len(d.ClientMessageKey))); ok {
		return b, nil
	}
	return bson.Marshal(plainMessageDoc(d))
}

// appendBSON appends the document to dst; false when a field needs the
// reflection encoder.
func (d *messageDoc) appendBSON(dst []byte) ([]byte, bool) {
	if d.Metadata != nil {
		return nil, false
	}
	start, dst := bsoncore.AppendDocumentStart(dst)
	dst = bsoncore.AppendObjectIDElement(dst, "_id", d.ID)
	dst = bsoncore.AppendStringElement(dst, "chatRoomId", d.ChatRoomID)
	var ok bool
	if dst, ok = appendIDElement(dst, "senderId", d.SenderID); !ok {
		return nil, false
	}
	dst = bsoncore.AppendStringElement(dst, "message", d.Message)
	dst = bsoncore.AppendStringElement(dst, "messageType", d.MessageType)
	dst = bsoncore.AppendDateTimeElement(dst, "timestamp", int64(bson.NewDateTimeFromTime(d.Timestamp)))
	if d.ReadBy == nil {
		dst = bsoncore.AppendNullElement(dst, "readBy")
	} else {
		var arr int32
		arr, dst = bsoncore.AppendArrayElementStart(dst, "readBy")
		for i, v := range d.ReadBy {
			if dst, ok = appendIDElement(dst, strconv.Itoa(i), v); !ok {
				return nil, false
			}
		}
		dst, _ = bsoncore.AppendArrayEnd(dst, arr)
	}
	dst = bsoncore.AppendBooleanElement(dst, "isDeleted", d.IsDeleted)
	if d.ReplyTo != nil {
		dst = bsoncore.AppendObjectIDElement(dst, "replyTo", *d.ReplyTo)
	}
	if d.ClientMessageID != "" {
		dst = bsoncore.AppendStringElement(dst, "clientMessageId", d.ClientMessageID)
	}
	if d.ClientMessageKey != "" {
		dst = bsoncore.AppendStringElement(dst, "clientMessageKey", d.ClientMessageKey)
	}
	dst = bsoncore.AppendDateTimeElement(dst, "createdAt", int64(bson.NewDateTimeFromTime(d.CreatedAt)))
	dst = bsoncore.AppendDateTimeElement(dst, "updatedAt", int64(bson.NewDateTimeFromTime(d.UpdatedAt)))
	dst = bsoncore.AppendInt32Element(dst, "__v", d.V)
	dst, err := bsoncore.AppendDocumentEnd(dst, start)
	return dst, err == nil
}

// appendIDElement appends an id as idValue makes it: an ObjectID or a
// string; false for anything else.
func appendIDElement(dst []byte, key string, v any) ([]byte, bool) {
	switch t := v.(type) {
	case bson.ObjectID:
		return bsoncore.AppendObjectIDElement(dst, key, t), true
	case string:
		return bsoncore.AppendStringElement(dst, key, t), true
	}
	return dst, false
}

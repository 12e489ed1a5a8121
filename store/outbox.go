package store

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/fitmate/commserver/chat"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The outbox makes "stored" imply "published, once" (on the embedded store
// it is kept in memory: memoutbox.go). Before a batch of
// messages is inserted, an entry per message is written to chatoutbox (ours,
// keyed by the message's _id; it only ever holds messages in flight). The
// live path publishes a message as soon as its insert is acknowledged and
// then removes its entry, lazily and in batches. What the live path could not
// publish stays behind: the pod died between write and broadcast, or the
// store acknowledged the insert after the sender's deadline (or never
// answered, yet stored it). Any pod's sweeper (chat.Service.Run, through
// ClaimUnpublished) claims such entries once their live claim has expired,
// publishes the messages that are stored and drops entries whose message is
// still absent long after anything in flight could have landed.
//
// A message is published twice only if its pod dies in the moment between
// publishing it and removing its entry (one delete's round trip, or the
// batch before it under load), or if two pods
// sweep the same dead pod's entry at the same instant on a store whose
// updates are not atomic (FerretDB). Clients dedupe newMessage by _id.

const colOutbox = "chatoutbox"

// Outbox timings.
const (
	outboxClaimTTL    = 30 * time.Second // a sweeper's claim on an entry
	outboxDeleteBatch = 256              // most published entries removed by one delete
)

// outboxDoc is an entry of chatoutbox.
type outboxDoc struct {
	ID      bson.ObjectID `bson:"_id"`
	Room    string        `bson:"chatRoomId"`
	At      time.Time     `bson:"at"`    // when the message was handed to the store
	Until   time.Time     `bson:"until"` // claimed (by the live path or a sweeper) until then
	Missing *time.Time    `bson:"missingSince,omitempty"`
}

// liveClaim is how long a sweeper leaves an entry to its live path: past
// every deadline of the insert, with room for the publish itself.
func (d *DB) liveClaim() time.Duration { return 2*d.timeout + 2*time.Second }

// dropAfter is how long an entry whose message is absent is kept, counted
// from the first sweep that found it absent (the store was answering then,
// so whatever insert was still in flight has had all that time to land).
func (d *DB) dropAfter() time.Duration { return max(10*time.Second, 10*d.timeout) }

// writeOutbox records the messages of a batch about to be inserted. A
// duplicate is an entry written by an earlier attempt of the same batch.
func (d *DB) writeOutbox(ctx context.Context, docs []any) error {
	now := time.Now().UTC().Truncate(time.Millisecond)
	entries := make([]any, len(docs))
	for i, doc := range docs {
		m := doc.(messageDoc)
		entries[i] = outboxDoc{ID: m.ID, Room: m.ChatRoomID, At: now, Until: now.Add(d.liveClaim())}
	}
	_, err := d.db.Collection(colOutbox).InsertMany(ctx, entries, options.InsertMany().SetOrdered(false))
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) && bwe.WriteConcernError == nil && len(bwe.WriteErrors) > 0 {
		for _, we := range bwe.WriteErrors {
			if !we.HasErrorCode(11000) {
				return err
			}
		}
		return nil
	}
	return err
}

// releaseOutbox makes the entries of messages stored after their sender's
// deadline claimable at once: the next sweep publishes them.
func (d *DB) releaseOutbox(docs []any) {
	ids := make(bson.A, len(docs))
	for i, doc := range docs {
		ids[i] = doc.(messageDoc).ID
	}
	err := d.call(context.Background(), "release outbox entries", func(ctx context.Context) error {
		_, err := d.db.Collection(colOutbox).UpdateMany(ctx, bson.M{"_id": bson.M{"$in": ids}},
			bson.M{"$set": bson.M{"until": time.Now().UTC().Truncate(time.Millisecond)}})
		return err
	})
	if err != nil {
		// Their live claim expires anyway: the sweep only comes later.
		d.log.Warn("store: releasing late messages to the sweeper", "messages", len(ids), "err", err)
	}
	d.log.Info("store: messages stored after their sender's deadline; the sweeper publishes them", "messages", len(ids))
}

// ClaimUnpublished claims up to limit messages whose entries' live claims
// have expired and returns those that are stored, oldest first; the caller
// publishes them and calls MessagesPublished. Entries of messages still
// absent are kept for dropAfter, then dropped.
func (d *DB) ClaimUnpublished(ctx context.Context, limit int) ([]chat.Message, error) {
	if d.memOut != nil {
		return d.claimMemory(ctx, limit)
	}
	return d.claimOutbox(ctx, limit)
}

// claimOutbox is ClaimUnpublished over chatoutbox.
func (d *DB) claimOutbox(ctx context.Context, limit int) ([]chat.Message, error) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	var entries []outboxDoc
	err := d.all(ctx, "find unpublished messages", &entries, func(ctx context.Context) (*mongo.Cursor, error) {
		return d.db.Collection(colOutbox).Find(ctx, bson.M{"until": bson.M{"$lt": now}},
			options.Find().SetSort(bson.D{{Key: "at", Value: 1}}).SetLimit(int64(limit)))
	})
	if err != nil {
		return nil, err
	}
	var out []chat.Message
	for _, e := range entries {
		claimed := false
		err := d.call(ctx, "claim outbox entry", func(ctx context.Context) error {
			res, err := d.db.Collection(colOutbox).UpdateOne(ctx, bson.M{"_id": e.ID, "until": e.Until},
				bson.M{"$set": bson.M{"until": now.Add(outboxClaimTTL)}})
			claimed = err == nil && res.ModifiedCount == 1
			return err
		})
		if err != nil {
			return out, err
		}
		if !claimed {
			continue // another sweeper has it
		}
		var doc messageDoc
		err = d.call(ctx, "find unpublished message", func(ctx context.Context) error {
			return d.db.Collection(colMessages).FindOne(ctx, bson.M{"_id": e.ID}).Decode(&doc)
		})
		switch {
		case err == nil:
			// Whatever did not reach the live path's index gets there
			// before anyone hears of the message.
			d.indexLate([]messageDoc{doc})
			out = append(out, doc.message())
		case errors.Is(err, mongo.ErrNoDocuments):
			d.absentFromOutbox(ctx, e, now)
		default:
			return out, err
		}
	}
	return out, nil
}

// absentFromOutbox handles an entry whose message is not stored: it is
// kept while an insert could still land, then dropped.
func (d *DB) absentFromOutbox(ctx context.Context, e outboxDoc, now time.Time) {
	var update func(ctx context.Context) error
	switch {
	case e.Missing == nil:
		update = func(ctx context.Context) error {
			_, err := d.db.Collection(colOutbox).UpdateOne(ctx, bson.M{"_id": e.ID}, bson.M{"$set": bson.M{"missingSince": now}})
			return err
		}
	case now.Sub(*e.Missing) >= d.dropAfter():
		d.log.Info("store: dropping the outbox entry of a message that was never stored", "message", e.ID.Hex(), "room", e.Room)
		update = func(ctx context.Context) error {
			_, err := d.db.Collection(colOutbox).DeleteOne(ctx, bson.M{"_id": e.ID})
			return err
		}
	default:
		return
	}
	if err := d.call(ctx, "update outbox entry", update); err != nil {
		d.log.Warn("store: outbox entry of an absent message", "message", e.ID.Hex(), "err", err)
	}
}

// MessagesPublished removes the messages' outbox entries. It does not
// block: entries are deleted in batches by the outbox's own goroutine.
func (d *DB) MessagesPublished(ids ...string) {
	if d.memOut != nil {
		d.publishedMemory(ids)
		return
	}
	d.outboxDone.add(ids)
}

// outboxDeleter deletes published messages' entries in batches.
type outboxDeleter struct {
	mu   sync.Mutex
	ids  []bson.ObjectID
	wake chan struct{}
}

func newOutboxDeleter() *outboxDeleter { return &outboxDeleter{wake: make(chan struct{}, 1)} }

func (o *outboxDeleter) add(ids []string) {
	o.mu.Lock()
	for _, id := range ids {
		if oid, err := bson.ObjectIDFromHex(id); err == nil {
			o.ids = append(o.ids, oid)
		}
	}
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outboxDeleter) take(n int) []bson.ObjectID {
	o.mu.Lock()
	defer o.mu.Unlock()
	n = min(n, len(o.ids))
	out := o.ids[:n:n]
	o.ids = o.ids[n:]
	return out
}

func (o *outboxDeleter) putBack(ids []bson.ObjectID) {
	o.mu.Lock()
	o.ids = append(ids, o.ids...)
	o.mu.Unlock()
}

// runOutboxDeleter deletes published entries until stop is closed, then
// deletes what is left (best effort: an entry left behind is swept, and its
// message published again, which clients dedupe).
func (d *DB) runOutboxDeleter(stop <-chan struct{}) {
	o := d.outboxDone
	retry := time.NewTicker(time.Second) // after a failed delete
	defer retry.Stop()
	for {
		select {
		case <-o.wake:
		case <-retry.C:
		case <-stop:
			for d.deletePublished(o) {
			}
			return
		}
		// No waiting to gather a batch: the window in which a crash would
		// publish a message twice is one delete's round trip. Under load,
		// what is published during that round trip forms the next batch.
		for d.deletePublished(o) {
		}
	}
}

// deletePublished deletes one batch; it reports whether to go on.
func (d *DB) deletePublished(o *outboxDeleter) bool {
	ids := o.take(outboxDeleteBatch)
	if len(ids) == 0 {
		return false
	}
	err := d.call(context.Background(), "delete outbox entries", func(ctx context.Context) error {
		_, err := d.db.Collection(colOutbox).DeleteMany(ctx, bson.M{"_id": bson.M{"$in": ids}})
		return err
	})
	if err != nil {
		d.log.Warn("store: deleting published outbox entries; retrying", "entries", len(ids), "err", err)
		o.putBack(ids)
		return false
	}
	return true
}

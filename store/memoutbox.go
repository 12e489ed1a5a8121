package store

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/chat"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The embedded store's outbox, in memory.
//
// chatoutbox costs two writes a message (an entry before the insert, its
// delete after the publish): on FerretDB a third of the server's CPU in a
// busy room. The embedded store belongs to this process alone, so it needs
// neither: what the live path has not published yet is known here, and only
// a crash could lose it, which a watermark covers. Once a second the store
// records, in commserverstate, a time before which every message handed to
// it was published or not stored (the oldest open message's creation time,
// else now). A start after an unclean stop rebuilds the index from every
// message anyway; the messages created from the watermark on are handed to
// the first sweep, which publishes them. A message published in the second
// before the crash may go out again (clients dedupe by _id).
//
// A message the store stored after its sender was answered (a late answer)
// goes to the next sweep the same way. What is open at a clean close (late
// messages not swept yet, inserts with no answer) is written to chatoutbox,
// where the next start's sweep finds it as on MongoDB.

// outboxWatermarkID is the watermark's _id in IndexStateCollection.
const outboxWatermarkID = "outboxWatermark"

type memOutbox struct {
	mu   sync.Mutex
	open map[bson.ObjectID]*openMsg // handed to the store, not yet published nor known not stored
	disk map[string]bool            // claimed from chatoutbox: their entries go once published
	mark time.Time                  // the watermark last written
}

// openMsg is a message between its submission and its publication.
type openMsg struct {
	created time.Time
	stored  *messageDoc // once the store acknowledged it
	// claimable is when a sweep may take it: a live claim after it was
	// stored (the live path publishes it meanwhile), at once if it was stored
	// after its sender was answered, a sweep's claim after a sweep took it.
	claimable time.Time
}

type watermarkDoc struct {
	ID      string    `bson:"_id"`
	Through time.Time `bson:"through"`
}

func newMemOutbox() *memOutbox {
	return &memOutbox{open: map[bson.ObjectID]*openMsg{}, disk: map[string]bool{}}
}

// opened records a message handed to the store.
func (o *memOutbox) opened(id bson.ObjectID, created time.Time) {
	o.mu.Lock()
	if o.open[id] == nil {
		o.open[id] = &openMsg{created: created}
	}
	o.mu.Unlock()
}

// closed forgets messages: published, or known not to be stored.
func (o *memOutbox) closed(ids ...bson.ObjectID) {
	o.mu.Lock()
	for _, id := range ids {
		delete(o.open, id)
	}
	o.mu.Unlock()
}

// stored records messages the store acknowledged; a sweep may take them
// once claimable (at that time).
func (o *memOutbox) stored(docs []any, claimable time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, d := range docs {
		m := d.(messageDoc)
		e := o.open[m.ID]
		if e == nil {
			e = &openMsg{created: m.CreatedAt}
			o.open[m.ID] = e
		}
		e.stored, e.claimable = &m, claimable
	}
}

// take hands up to limit stored messages that are claimable to a sweep,
// oldest first; a sweep may take them again after claim.
func (o *memOutbox) take(limit int, now time.Time, claim time.Duration) []messageDoc {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []messageDoc
	for _, e := range o.open {
		if e.stored != nil && !e.claimable.After(now) {
			out = append(out, *e.stored)
		}
	}
	slices.SortFunc(out, func(a, b messageDoc) int { return a.CreatedAt.Compare(b.CreatedAt) })
	if len(out) > limit {
		out = out[:limit]
	}
	for _, m := range out {
		o.open[m.ID].claimable = now.Add(claim)
	}
	return out
}

// watermark is a time before which every message handed to the store was
// published or not stored. An open message older than expire (no answer,
// never stored after all) holds it no longer.
func (o *memOutbox) watermark(now time.Time, expire time.Duration) time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	// Never later than a second ago: a message is created (its time taken)
	// a moment before it is handed to the store and opened here.
	through := now.Add(-time.Second)
	for id, e := range o.open {
		if e.stored == nil && now.Sub(e.created) > expire {
			delete(o.open, id)
			continue
		}
		if e.created.Before(through) {
			through = e.created
		}
	}
	return through
}

// runWatermark writes the watermark once a second until stop is closed.
func (d *DB) runWatermark(stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		_ = d.writeWatermark(context.Background())
	}
}

// writeWatermark records the outbox's watermark now, unless it is the one
// written last.
func (d *DB) writeWatermark(ctx context.Context) error {
	// A message whose insert had no answer for this long is not being stored.
	through := d.memOut.watermark(time.Now(), 2*d.timeout+2*time.Second).UTC().Truncate(time.Millisecond)
	if through.Equal(d.memOut.mark) {
		return nil
	}
	err := d.call(ctx, "write the outbox watermark", func(ctx context.Context) error {
		_, err := d.db.Collection(IndexStateCollection).ReplaceOne(ctx, bson.M{"_id": outboxWatermarkID},
			watermarkDoc{ID: outboxWatermarkID, Through: through}, options.Replace().SetUpsert(true))
		return err
	})
	if err == nil {
		d.memOut.mark = through
	}
	return err
}

// readWatermark returns the last watermark written (zero when none).
func (d *DB) readWatermark(ctx context.Context) (time.Time, error) {
	var w watermarkDoc
	err := d.call(ctx, "read the outbox watermark", func(ctx context.Context) error {
		return d.db.Collection(IndexStateCollection).FindOne(ctx, bson.M{"_id": outboxWatermarkID}).Decode(&w)
	})
	if errors.Is(err, mongo.ErrNoDocuments) {
		return time.Time{}, nil
	}
	return w.Through, err
}

// persistOpen writes what is still open at a clean close to chatoutbox, for
// the next start's sweep.
func (d *DB) persistOpen(ctx context.Context) {
	o := d.memOut
	o.mu.Lock()
	var entries []any
	now := time.Now().UTC().Truncate(time.Millisecond)
	for id, e := range o.open {
		entries = append(entries, outboxDoc{ID: id, At: e.created, Until: now})
	}
	o.mu.Unlock()
	if len(entries) == 0 {
		return
	}
	err := d.call(ctx, "keep open messages in the outbox", func(ctx context.Context) error {
		_, err := d.db.Collection(colOutbox).InsertMany(ctx, entries, options.InsertMany().SetOrdered(false))
		if isDuplicatesOnly(err) {
			return nil
		}
		return err
	})
	if err != nil {
		d.log.Warn("store: messages not yet published are lost to the next start's sweep", "messages", len(entries), "err", err)
	}
}

// claimMemory is ClaimUnpublished on the embedded store: the ready
// messages, then what chatoutbox holds (left by a clean close).
func (d *DB) claimMemory(ctx context.Context, limit int) ([]chat.Message, error) {
	var out []chat.Message
	for _, m := range d.memOut.take(limit, time.Now(), outboxClaimTTL) {
		out = append(out, m.message())
	}
	if len(out) >= limit {
		return out, nil
	}
	disk, err := d.claimOutbox(ctx, limit-len(out))
	d.memOut.mu.Lock()
	for _, m := range disk {
		d.memOut.disk[m.ID] = true
	}
	d.memOut.mu.Unlock()
	return append(out, disk...), err
}

// publishedMemory is MessagesPublished on the embedded store.
func (d *DB) publishedMemory(ids []string) {
	var oids []bson.ObjectID
	var fromDisk []string
	d.memOut.mu.Lock()
	for _, id := range ids {
		if d.memOut.disk[id] {
			delete(d.memOut.disk, id)
			fromDisk = append(fromDisk, id)
		}
	}
	d.memOut.mu.Unlock()
	for _, id := range ids {
		if oid, err := bson.ObjectIDFromHex(id); err == nil {
			oids = append(oids, oid)
		}
	}
	d.memOut.closed(oids...)
	if len(fromDisk) > 0 {
		d.outboxDone.add(fromDisk)
	}
}

// settledInMemory reports an insert's outcome to the in-memory outbox:
// created messages stay open until published; a message not created (a
// client id used before) or refused is closed; one with no answer in time
// stays open, as its insert may still land.
func (d *DB) settledInMemory(id bson.ObjectID, created bool, err error) {
	if d.memOut == nil || created && err == nil || errors.Is(err, commserver.ErrStorageUnavailable) {
		return
	}
	d.memOut.closed(id)
}

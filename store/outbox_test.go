package store

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/chat"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

func testMessage(room, text string) chat.Message {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return chat.Message{ChatRoomID: room, SenderID: "aaaaaaaaaaaaaaaaaaaaaaa1", Text: text, Type: chat.TypeText,
		Timestamp: now, ReadBy: []string{}, CreatedAt: now, UpdatedAt: now}
}

// outcome is what InsertMessage's done reported, and when.
type outcome struct {
	m       chat.Message
	created bool
	err     error
	at      time.Time
}

// insertAsync is InsertMessage; its outcome comes on the channel.
func insertAsync(ctx context.Context, d *DB, m chat.Message) <-chan outcome {
	ch := make(chan outcome, 1)
	d.InsertMessage(ctx, m, func(m chat.Message, created bool, err error) {
		ch <- outcome{m, created, err, time.Now()}
	})
	return ch
}

func outboxIDs(t *testing.T, d *DB) map[bson.ObjectID]outboxDoc {
	t.Helper()
	var entries []outboxDoc
	if err := d.all(context.Background(), "test", &entries, func(ctx context.Context) (*mongo.Cursor, error) {
		return d.db.Collection(colOutbox).Find(ctx, bson.M{})
	}); err != nil {
		t.Fatal(err)
	}
	out := map[bson.ObjectID]outboxDoc{}
	for _, e := range entries {
		out[e.ID] = e
	}
	return out
}

// A message is recorded in the outbox before it is stored, and its entry
// goes once it is published.
func TestOutboxEntryPrecedesTheMessageAndGoesOncePublished(t *testing.T) {
	d := openExternalTestDB(t, Options{Timeout: 10 * time.Second})
	var seen []bson.ObjectID
	d.messages.before = func(ctx context.Context, docs []any) error {
		err := d.writeOutbox(ctx, docs)
		for _, doc := range docs {
			id := doc.(messageDoc).ID
			if err := d.db.Collection(colMessages).FindOne(ctx, bson.M{"_id": id}).Err(); err == nil {
				t.Errorf("message %s stored before its outbox entry", id.Hex())
			}
			seen = append(seen, id)
		}
		return err
	}
	o := <-insertAsync(context.Background(), d, testMessage("room-1", "hello"))
	if o.err != nil || !o.created {
		t.Fatalf("insert: %+v", o)
	}
	oid, _ := bson.ObjectIDFromHex(o.m.ID)
	if _, ok := outboxIDs(t, d)[oid]; !ok || len(seen) != 1 || seen[0] != oid {
		t.Fatalf("no outbox entry for the stored message (saw %v)", seen)
	}
	d.MessagesPublished(o.m.ID)
	deadline := time.Now().Add(5 * time.Second)
	for len(outboxIDs(t, d)) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the published message's entry is still there")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A document queued behind a slow batch is answered at its own deadline,
// counted from its submission, and is then never written. The slow batch's
// document, stored after its deadline, goes to the late hook and its
// outbox entry is released to the sweeper.
func TestDeadlineCountsFromSubmission(t *testing.T) {
	const timeout = 400 * time.Millisecond
	d := openTestDBWith(t, Options{DataDir: t.TempDir(), Timeout: timeout})
	<-d.IndexesReady()
	release := make(chan struct{})
	var once sync.Once
	d.messages.before = func(ctx context.Context, docs []any) error {
		once.Do(func() { <-release }) // the first batch hangs past its deadline
		return d.writeOutbox(ctx, docs)
	}
	var late []any
	var lateMu sync.Mutex
	d.messages.late = func(docs []any) {
		lateMu.Lock()
		late = append(late, docs...)
		lateMu.Unlock()
		d.releaseOutbox(docs)
	}
	start := time.Now()
	slow := insertAsync(context.Background(), d, testMessage("room-1", "slow"))
	time.Sleep(timeout / 2)
	queuedAt := time.Now()
	queued := insertAsync(context.Background(), d, testMessage("room-1", "queued"))

	o := <-slow
	if !errors.Is(o.err, commserver.ErrStorageUnavailable) || o.at.Sub(start) > timeout+150*time.Millisecond {
		t.Fatalf("slow: %v after %v", o.err, o.at.Sub(start))
	}
	q := <-queued
	if took := q.at.Sub(queuedAt); !errors.Is(q.err, commserver.ErrStorageUnavailable) || took > timeout+150*time.Millisecond || took < timeout-50*time.Millisecond {
		t.Fatalf("queued: %v after %v, want STORAGE_UNAVAILABLE after %v", q.err, took, timeout)
	}
	close(release)
	// The batcher moves on: a marker sent now is stored, and by then the
	// queued document was skipped, not written.
	if m := <-insertAsync(context.Background(), d, testMessage("room-1", "marker")); m.err != nil {
		t.Fatal(m.err)
	}
	if n, _ := d.db.Collection(colMessages).CountDocuments(context.Background(), bson.M{"message": "queued"}); n != 0 {
		t.Fatal("a document answered before its batch was sent was stored")
	}
}

// A batch stored after its documents' deadlines (the store answered late)
// goes to the late hook, which releases the outbox entries: the next sweep
// publishes the messages at once rather than after the live claim.
func TestLateAnswerReleasesTheOutboxEntry(t *testing.T) {
	const timeout = 300 * time.Millisecond
	d := openExternalTestDB(t, Options{Timeout: timeout})
	<-d.IndexesReady()
	d.messages.after = func([]any) { time.Sleep(timeout) } // stored, but the answer comes after the deadline
	lateCh := make(chan []any, 1)
	d.messages.late = func(docs []any) { d.releaseOutbox(docs); lateCh <- docs }
	o := <-insertAsync(context.Background(), d, testMessage("room-1", "late"))
	if !errors.Is(o.err, commserver.ErrStorageUnavailable) {
		t.Fatalf("answer %v, want STORAGE_UNAVAILABLE", o.err)
	}
	var late []any
	select {
	case late = <-lateCh:
	case <-time.After(5 * time.Second):
		t.Fatal("the late store was not reported")
	}
	got, err := d.ClaimUnpublished(context.Background(), 10)
	if err != nil || len(got) != 1 || got[0].ID != late[0].(messageDoc).ID.Hex() {
		t.Fatalf("claimed %v (%v), want the late message at once", got, err)
	}
}

// A stored message whose live path never published it (the pod died, or
// the answer came too late) is claimed once its live claim expires, handed
// out once, and its entry goes when it is published; an entry whose message
// never landed is dropped after dropAfter.
func TestClaimUnpublished(t *testing.T) {
	d := openExternalTestDB(t, Options{Timeout: time.Second})
	<-d.IndexesReady()
	ctx := context.Background()
	o := <-insertAsync(context.Background(), d, testMessage("room-1", "orphan"))
	if o.err != nil {
		t.Fatal(o.err)
	}
	if got, err := d.ClaimUnpublished(ctx, 10); err != nil || len(got) != 0 {
		t.Fatalf("claimed %v (%v) while the live path still had it", got, err)
	}
	time.Sleep(d.liveClaim())
	got, err := d.ClaimUnpublished(ctx, 10)
	if err != nil || len(got) != 1 || got[0].ID != o.m.ID || got[0].Text != "orphan" {
		t.Fatalf("claimed %+v (%v), want the orphan", got, err)
	}
	if again, _ := d.ClaimUnpublished(ctx, 10); len(again) != 0 {
		t.Fatalf("claimed twice: %v", again)
	}
	d.MessagesPublished(got[0].ID)
	waitFor(t, func() bool { return len(outboxIDs(t, d)) == 0 })

	// An entry whose message is absent: kept, then dropped.
	ghost := bson.NewObjectID()
	past := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	if _, err := d.db.Collection(colOutbox).InsertOne(ctx, outboxDoc{ID: ghost, Room: "room-1", At: past, Until: past}); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.ClaimUnpublished(ctx, 10); len(got) != 0 {
		t.Fatalf("claimed an absent message: %v", got)
	}
	e, ok := outboxIDs(t, d)[ghost]
	if !ok || e.Missing == nil {
		t.Fatalf("the absent message's entry was not kept and marked: %+v", e)
	}
	old := time.Now().UTC().Add(-d.dropAfter() - time.Second).Truncate(time.Millisecond)
	if _, err := d.db.Collection(colOutbox).UpdateOne(ctx, bson.M{"_id": ghost}, bson.M{"$set": bson.M{"until": past, "missingSince": old}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.ClaimUnpublished(ctx, 10); len(got) != 0 {
		t.Fatalf("claimed an absent message: %v", got)
	}
	if _, ok := outboxIDs(t, d)[ghost]; ok {
		t.Fatal("the entry of a message absent for dropAfter was kept")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The embedded store keeps its outbox in memory: a published message
// costs no write besides its own, a stored message its live path did not
// publish goes to the sweep after the live claim, once, and a message stored
// after its sender was answered goes to the very next sweep.
func TestMemoryOutbox(t *testing.T) {
	d := openTestDBWith(t, Options{DataDir: t.TempDir(), Timeout: 300 * time.Millisecond})
	ctx := context.Background()
	o := <-insertAsync(ctx, d, testMessage("room-1", "published"))
	if o.err != nil {
		t.Fatal(o.err)
	}
	d.MessagesPublished(o.m.ID)
	orphan := <-insertAsync(ctx, d, testMessage("room-1", "orphan"))
	if orphan.err != nil {
		t.Fatal(orphan.err)
	}
	if n, err := d.db.Collection(colOutbox).CountDocuments(ctx, bson.M{}); err != nil || n != 0 {
		t.Fatalf("chatoutbox holds %d entries (%v): the embedded store writes none", n, err)
	}
	if got, _ := d.ClaimUnpublished(ctx, 10); len(got) != 0 {
		t.Fatalf("claimed %v within the live claim", got)
	}
	time.Sleep(d.liveClaim())
	got, err := d.ClaimUnpublished(ctx, 10)
	if err != nil || len(got) != 1 || got[0].ID != orphan.m.ID {
		t.Fatalf("claimed %+v (%v), want the orphan alone", got, err)
	}
	if again, _ := d.ClaimUnpublished(ctx, 10); len(again) != 0 {
		t.Fatalf("claimed twice: %v", again)
	}
	d.MessagesPublished(orphan.m.ID)

	// Late: stored, but answered after the deadline.
	d.messages.after = func([]any) { time.Sleep(d.timeout) }
	late := <-insertAsync(ctx, d, testMessage("room-1", "late"))
	if !errors.Is(late.err, commserver.ErrStorageUnavailable) {
		t.Fatalf("answer %v, want STORAGE_UNAVAILABLE", late.err)
	}
	waitFor(t, func() bool {
		got, _ := d.ClaimUnpublished(ctx, 10)
		return len(got) == 1 && got[0].Text == "late"
	})
}

// After an unclean stop, the embedded store hands the first sweep every
// message created from its last outbox watermark on: a crash between the
// write and the broadcast loses nothing.
func TestMemoryOutboxAfterACrash(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d1, err := Open(ctx, Options{DataDir: dir, Timeout: 5 * time.Second}, log)
	if err != nil {
		t.Fatal(err)
	}
	published := <-insertAsync(ctx, d1, testMessage("room-1", "published"))
	d1.MessagesPublished(published.m.ID)
	waitFor(t, func() bool { // the watermark has passed the published message
		w, err := d1.readWatermark(ctx)
		return err == nil && w.After(published.m.CreatedAt)
	})
	o := <-insertAsync(ctx, d1, testMessage("room-1", "stored, never published"))
	if o.err != nil {
		t.Fatal(o.err)
	}
	// The crash: the process's store goes away without the store's Close.
	d1.embedded.Close()

	d2 := openTestDBWith(t, Options{DataDir: dir, Timeout: 300 * time.Millisecond})
	if got, _ := d2.ClaimUnpublished(ctx, 10); len(got) != 0 {
		t.Fatalf("claimed %v at once; the clients of the dead process get a live claim to come back", got)
	}
	time.Sleep(d2.liveClaim())
	got, err := d2.ClaimUnpublished(ctx, 10)
	if err != nil || len(got) != 1 || got[0].ID != o.m.ID {
		t.Fatalf("after the crash the sweep got %+v (%v), want the unpublished message alone", got, err)
	}
}

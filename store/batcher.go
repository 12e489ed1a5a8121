package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	commserver "github.com/fitmate/commserver"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// errDuplicate is a duplicate-key answer for one document of a batch.
var errDuplicate = errors.New("duplicate key")

// batcher stores documents of one collection (chat messages, notifications)
// in batches: each waiting insert joins the next insert command, so N concurrent
// writers cost one round trip instead of N. Outcomes are reported in the
// order documents were submitted.
//
// Every document has its own deadline, counted from its submission (the
// store's timeout, or the caller's context if sooner): a document queued
// behind a slow batch is answered STORAGE_UNAVAILABLE at its deadline, not
// when the batch before it gives up. One answered before its batch was sent is
// never written; one answered while its batch was in flight may still be
// stored, and then the batch's late hook hears of it (chat messages: see the
// outbox).
//
// Documents carry their _id from the start, so a batch that failed for want of
// an answer is retried safely: a duplicate _id on retry means it had landed.
type batcher struct {
	d    *DB
	col  string
	max  int
	in   chan *insertReq
	quit chan struct{}
	once sync.Once

	// before runs ahead of each insert attempt with the documents about to
	// be written (the message outbox); an error fails the attempt.
	before func(ctx context.Context, docs []any) error
	// after runs once a batch's outcome is known, before anyone is answered,
	// with the documents that are stored (the embedded store's indexes).
	after func(docs []any)
	// late is told the documents stored after their callers were answered.
	late func(docs []any)
}

type insertReq struct {
	doc      any
	deadline time.Time
	done     func(error)
	answered atomic.Bool
	timer    *time.Timer
	expired  chan struct{} // closed when the deadline answered the request
}

// answer reports err to the request unless it was answered already; it
// reports whether this call answered it. (It leaves the timer alone: the
// timer's own callback calls it.)
func (r *insertReq) answer(err error) bool {
	if !r.answered.CompareAndSwap(false, true) {
		return false
	}
	r.done(err)
	return true
}

func newBatcher(d *DB, col string, max int) *batcher {
	return &batcher{d: d, col: col, max: max, in: make(chan *insertReq, 4*max), quit: make(chan struct{})}
}

// insert queues doc and waits for its outcome (at the latest at its deadline).
func (b *batcher) insert(ctx context.Context, doc any) error {
	ch := make(chan error, 1)
	b.submit(ctx, doc, func(err error) { ch <- err })
	return <-ch
}

// deadlineOf is when a call made now must be answered: the store's timeout,
// or the caller's deadline if it comes first.
func (d *DB) deadlineOf(ctx context.Context) time.Time {
	deadline := time.Now().Add(d.timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	return deadline
}

// errNoAnswer is a document's outcome when its deadline passed first.
func (b *batcher) errNoAnswer() error {
	return &commserver.Error{Code: commserver.CodeStorageUnavailable,
		Message: "the database did not answer in time; try again shortly", Err: context.DeadlineExceeded}
}

// submit queues doc; done gets its outcome exactly once: from the
// batcher's goroutine in submission order, or from a timer at the
// document's deadline. It blocks only while the queue is full
// (backpressure), and never past the deadline. done must not block.
func (b *batcher) submit(ctx context.Context, doc any, done func(error)) {
	r := &insertReq{doc: doc, deadline: b.d.deadlineOf(ctx), done: done, expired: make(chan struct{})}
	r.timer = time.AfterFunc(time.Until(r.deadline), func() {
		if r.answer(b.errNoAnswer()) {
			close(r.expired)
		}
	})
	shutting := &commserver.Error{Code: commserver.CodeStorageUnavailable, Message: "the server is shutting down"}
	select {
	case <-b.quit:
		r.timer.Stop()
		r.answer(shutting)
		return
	default:
	}
	select {
	case b.in <- r:
	case <-b.quit:
		r.timer.Stop()
		r.answer(shutting)
	case <-r.expired:
	case <-ctx.Done():
		r.timer.Stop()
		r.answer(b.d.fail("queue "+b.col, ctx.Err()))
	}
}

// close stops taking inserts; run finishes those already queued.
func (b *batcher) close() { b.once.Do(func() { close(b.quit) }) }

func (b *batcher) run() {
	batch := make([]*insertReq, 0, b.max)
	for {
		var first *insertReq
		select {
		case first = <-b.in:
		case <-b.quit:
			// Finish what was accepted before the close.
			for {
				select {
				case r := <-b.in:
					b.flush([]*insertReq{r})
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
	fill:
		for len(batch) < b.max {
			select {
			case r := <-b.in:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		b.flush(batch)
	}
}

// flush inserts the batch, retrying what failed for want of an answer until
// the last of its documents' deadlines, and reports each document's outcome.
func (b *batcher) flush(batch []*insertReq) {
	pending := make([]*insertReq, 0, len(batch))
	var deadline time.Time
	for _, r := range batch {
		if r.answered.Load() {
			r.timer.Stop()
			continue // answered at its deadline while queued: never written
		}
		pending = append(pending, r)
		if r.deadline.After(deadline) {
			deadline = r.deadline
		}
	}
	wait := 50 * time.Millisecond
	for len(pending) > 0 {
		docs := make([]any, len(pending))
		for i, r := range pending {
			docs[i] = r.doc
		}
		failed, retry := b.attempt(deadline, docs)
		if retry && time.Now().Add(wait).Before(deadline) {
			b.d.log.Warn("store: insert failed; retrying", "collection", b.col, "documents", len(pending), "err", failed[0])
			time.Sleep(wait)
			wait *= 2
			// Those answered at their deadline meanwhile may still land from
			// the attempt that failed; they stay in the retry, so that the
			// outcome is known and reported (a duplicate _id means stored).
			continue
		}
		b.report(pending, docs, failed)
		return
	}
}

// attempt runs one insert of docs under deadline. It returns each
// document's error (nil: stored) and whether the whole attempt failed for
// want of an answer, so that a retry may settle it.
func (b *batcher) attempt(deadline time.Time, docs []any) (failed []error, retry bool) {
	failed = make([]error, len(docs))
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	err := error(nil)
	if b.before != nil {
		err = b.before(ctx, docs)
	}
	if err == nil {
		err = b.insertCommand(ctx, docs, failed)
	}
	if err != nil {
		mapped := b.d.fail("insert into "+b.col, err)
		for i := range failed {
			failed[i] = mapped
		}
		retry = errors.Is(mapped, commserver.ErrStorageUnavailable)
	}
	return failed, retry
}

// maxInsertBytes bounds one insert command: MongoDB takes a command of up to
// 16 MiB; the documents of a batch are split in commands of at most this.
const maxInsertBytes = 8 << 20

// insertCommand stores docs with unordered insert commands and sets each
// document's error in failed (errDuplicate for a duplicate key); it returns
// an error when a command as a whole failed (the documents of the commands
// before it are settled in failed). It is what insertMany sends, without the
// driver's per-document _id decode: a 4 KB reader for each document, 14 % of
// a sending pod's allocations. Our documents always carry their _id.
func (b *batcher) insertCommand(ctx context.Context, docs []any, failed []error) error {
	raws := make([]bson.Raw, len(docs))
	for i, doc := range docs {
		var raw []byte
		var err error
		if m, ok := doc.(bson.Marshaler); ok { // messageDoc: no reflection
			raw, err = m.MarshalBSON()
		} else {
			raw, err = bson.Marshal(doc)
		}
		if err != nil {
			return fmt.Errorf("encode document %d: %w", i, err)
		}
		raws[i] = raw
	}
	var wc bson.Raw
	if w := b.d.wc; w != nil {
		var d bson.D
		if w.W != nil {
			d = append(d, bson.E{Key: "w", Value: w.W})
		}
		if w.Journal != nil {
			d = append(d, bson.E{Key: "j", Value: *w.Journal})
		}
		if len(d) > 0 {
			var err error
			if wc, err = bson.Marshal(d); err != nil {
				return fmt.Errorf("encode write concern: %w", err)
			}
		}
	}
	for first := 0; first < len(raws); {
		end, size := first, 0
		for end < len(raws) && (end == first || size+len(raws[end]) <= maxInsertBytes) {
			size += len(raws[end])
			end++
		}
		cmd := insertCommandDoc(b.col, raws[first:end], wc, size)
		// The driver reads every reply's writeErrors and writeConcernError
		// into a WriteException: write errors alone are per document.
		var we mongo.WriteException
		if err := b.d.db.RunCommand(ctx, cmd).Err(); err != nil &&
			(!errors.As(err, &we) || we.WriteConcernError != nil || len(we.WriteErrors) == 0) {
			return err
		}
		for _, e := range we.WriteErrors {
			i := first + e.Index
			if e.Index < 0 || i >= end {
				return fmt.Errorf("insert answered a write error for document %d of %d", e.Index, end-first)
			}
			if e.Code == 11000 {
				failed[i] = errDuplicate
			} else {
				failed[i] = b.d.fail("insert into "+b.col, e)
			}
		}
		first = end
	}
	return nil
}

// insertCommandDoc writes {insert: col, documents: docs, ordered: false,
// writeConcern: wc} (wc when set) in one buffer: the driver's reflection
// over a bson.D of documents visited each of them again.
func insertCommandDoc(col string, docs []bson.Raw, wc bson.Raw, size int) bson.Raw {
	b := make([]byte, 0, size+16*len(docs)+len(col)+len(wc)+64)
	start, b := bsoncore.AppendDocumentStart(b)
	b = bsoncore.AppendStringElement(b, "insert", col)
	arr, b := bsoncore.AppendArrayElementStart(b, "documents")
	for i, d := range docs {
		b = bsoncore.AppendDocumentElement(b, strconv.Itoa(i), d)
	}
	b, _ = bsoncore.AppendArrayEnd(b, arr)
	b = bsoncore.AppendBooleanElement(b, "ordered", false)
	if len(wc) > 0 {
		b = bsoncore.AppendDocumentElement(b, "writeConcern", wc)
	}
	b, _ = bsoncore.AppendDocumentEnd(b, start)
	return b
}

// report runs the after hook on what is stored, then answers every
// document, and hands those stored after their deadline to the late hook.
func (b *batcher) report(pending []*insertReq, docs []any, failed []error) {
	answerLate(b.d.timeout, docs)
	if b.after != nil {
		var stored []any
		for i, err := range failed {
			if err == nil {
				stored = append(stored, docs[i])
			}
		}
		if len(stored) > 0 {
			b.after(stored)
		}
	}
	var late []any
	for i, r := range pending {
		r.timer.Stop()
		if !r.answer(failed[i]) && failed[i] == nil {
			late = append(late, docs[i])
		}
	}
	if len(late) > 0 && b.late != nil {
		b.late(late)
	}
}

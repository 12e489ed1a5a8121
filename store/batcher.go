package store

import (
	"context"
	"errors"
	"sync"
	"time"

	commserver "github.com/fitmate/commserver"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// errDuplicate is a duplicate-key answer for one document of a batch.
var errDuplicate = errors.New("duplicate key")

// batcher stores documents of one collection (chat messages, notifications)
// in batches: each waiting insert joins the next insertMany, so N concurrent
// writers cost one round trip instead of N. A caller hears of its document
// only after it was acknowledged, in the order documents were submitted.
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
}

type insertReq struct {
	ctx  context.Context
	doc  any
	done func(error)
}

func newBatcher(d *DB, col string, max int) *batcher {
	return &batcher{d: d, col: col, max: max, in: make(chan *insertReq, 4*max), quit: make(chan struct{})}
}

// insert queues doc and waits for its outcome or ctx.
func (b *batcher) insert(ctx context.Context, doc any) error {
	ch := make(chan error, 1)
	b.submit(ctx, doc, func(err error) { ch <- err })
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return b.d.fail("store "+b.col, ctx.Err())
	}
}

// submit queues doc; done gets its outcome, on the batcher's goroutine, in
// submission order. It blocks only while the queue is full (backpressure).
func (b *batcher) submit(ctx context.Context, doc any, done func(error)) {
	r := &insertReq{ctx: ctx, doc: doc, done: done}
	select {
	case <-b.quit:
		done(&commserver.Error{Code: commserver.CodeStorageUnavailable, Message: "the server is shutting down"})
		return
	default:
	}
	select {
	case b.in <- r:
	case <-b.quit:
		done(&commserver.Error{Code: commserver.CodeStorageUnavailable, Message: "the server is shutting down"})
	case <-ctx.Done():
		done(b.d.fail("queue message", ctx.Err()))
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
// the store's deadline, and reports each document's outcome.
func (b *batcher) flush(batch []*insertReq) {
	pending := make([]*insertReq, 0, len(batch))
	for _, r := range batch {
		if r.ctx.Err() != nil {
			r.done(b.d.fail("store message", r.ctx.Err())) // its sender gave up: do not store it now
			continue
		}
		pending = append(pending, r)
	}
	deadline := time.Now().Add(b.d.timeout)
	wait := 50 * time.Millisecond
	for len(pending) > 0 {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		docs := make([]any, len(pending))
		for i, r := range pending {
			docs[i] = r.doc
		}
		_, err := b.d.db.Collection(b.col).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		cancel()
		retry := pending[:0:0]
		failed := map[int]error{}
		var bwe mongo.BulkWriteException
		switch {
		case err == nil:
		case errors.As(err, &bwe) && len(bwe.WriteErrors) > 0:
			for _, we := range bwe.WriteErrors {
				if we.HasErrorCode(11000) {
					failed[we.Index] = errDuplicate
				} else {
					failed[we.Index] = b.d.fail("insert into "+b.col, we)
				}
			}
		default:
			mapped := b.d.fail("insert into "+b.col, err)
			if errors.Is(mapped, commserver.ErrStorageUnavailable) && time.Now().Add(wait).Before(deadline) {
				retry = pending
			} else {
				for i := range pending {
					failed[i] = mapped
				}
			}
		}
		if len(retry) > 0 {
			b.d.log.Warn("store: insert failed; retrying", "collection", b.col, "documents", len(retry), "err", err)
			time.Sleep(wait)
			wait *= 2
			pending = retry
			continue
		}
		for i, r := range pending {
			r.done(failed[i])
		}
		return
	}
}

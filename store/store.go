// Package store keeps the server's data in MongoDB, in the collections and
// document shapes the NestJS server's Mongoose models used (chatmessages,
// notifications, smslogs), so either server can read what the other wrote.
//
// With no MONGODB_URI it starts an embedded FerretDB (a MongoDB wire-protocol
// server over SQLite files) so the server runs on a bare machine. FerretDB
// lacks a few MongoDB features (TTL indexes, $lookup, $first/$last); the
// places that use them detect "not implemented" and fall back (see isNotImplemented).
//
// Every call runs under a deadline (Options.Timeout); a store that does not
// answer in time yields commserver.ErrStorageUnavailable, never a hang.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	commserver "github.com/fitmate/commserver"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

// Collection names: Mongoose's pluralised model names, plus chatrooms (ours).
const (
	colMessages      = "chatmessages"
	colNotifications = "notifications"
	colSMSLogs       = "smslogs"
	colRooms         = "chatrooms"
	colUsers         = "users"
)

// embeddedPoolSize caps connections to the embedded store.
const embeddedPoolSize = 8

// Options configure Open.
type Options struct {
	URI       string        // MongoDB URI; empty starts the embedded store
	Database  string        // database name
	DataDir   string        // the embedded store's directory
	Timeout   time.Duration // deadline of every call
	BatchSize int           // most messages stored by one insert
}

// DB is the MongoDB-backed store. It implements the domain packages' Store interfaces.
type DB struct {
	client   *mongo.Client
	db       *mongo.Database
	timeout  time.Duration
	log      *slog.Logger
	embedded *Embedded                  // nil with an external MongoDB
	wc       *writeconcern.WriteConcern // the URI's, for the insert commands the batchers send; nil: the server's default
	index    *embeddedIndex             // the embedded store's index (index.go); nil with MongoDB
	stopIdx  chan struct{}
	idxDone  chan struct{}

	messages      *batcher
	notifications *batcher
	outboxDone    *outboxDeleter
	memOut        *memOutbox // the embedded store's outbox; nil on MongoDB

	indexesMu   chan struct{} // a one-slot semaphore serialising createIndexes (a caller's deadline still holds)
	indexesDone chan struct{}
	stop        context.CancelFunc
	writers     sync.WaitGroup // the batchers
	stopOutbox  chan struct{}
	wg          sync.WaitGroup // everything else
}

// Open connects to MongoDB (or starts the embedded store) and starts the
// store's background work: the message write batcher and index creation,
// retried until the database answers. It does not fail when the database is
// down at start: the server comes up unready and recovers when it returns.
func Open(ctx context.Context, opts Options, log *slog.Logger) (*DB, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 256
	}
	if opts.Database == "" {
		opts.Database = "fitmate"
	}
	d := &DB{timeout: opts.Timeout, log: log, indexesDone: make(chan struct{}), indexesMu: make(chan struct{}, 1)}
	uri := opts.URI
	if uri == "" {
		e, err := StartEmbedded(opts.DataDir, "127.0.0.1:0", log)
		if err != nil {
			return nil, err
		}
		d.embedded = e
		uri = e.URI
		log.Info("store: no MONGODB_URI, using the embedded MongoDB-compatible store (FerretDB over SQLite)",
			"dir", opts.DataDir)
	}
	co := options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(opts.Timeout).
		SetConnectTimeout(opts.Timeout).
		SetAppName("fitmate-commserver")
	if d.embedded != nil {
		// SQLite serialises writes: more connections only add goroutines and memory.
		co.SetMaxPoolSize(embeddedPoolSize)
	}
	d.wc = co.WriteConcern
	client, err := mongo.Connect(co)
	if err != nil {
		d.closeEmbedded()
		return nil, fmt.Errorf("store: connect: %w", err)
	}
	d.client = client
	d.db = client.Database(opts.Database)

	bg, stop := context.WithCancel(context.Background())
	d.stop = stop
	d.messages = newBatcher(d, colMessages, opts.BatchSize)
	d.notifications = newBatcher(d, colNotifications, opts.BatchSize)
	d.outboxDone, d.stopOutbox = newOutboxDeleter(), make(chan struct{})
	if d.embedded != nil {
		d.memOut = newMemOutbox() // the outbox in memory (memoutbox.go)
		// Stored: its live path publishes it, or the sweep after the live
		// claim. Stored after its sender was answered: the next sweep.
		d.messages.after = func(docs []any) { d.memOut.stored(docs, time.Now().Add(d.liveClaim())) }
		d.messages.late = func(docs []any) { d.memOut.stored(docs, time.Now()) }
	} else {
		d.messages.before = d.writeOutbox
		d.messages.late = d.releaseOutbox
	}
	if d.embedded != nil {
		// The embedded store is up with us: its indexes and its own index
		// are ready before anything is served.
		if err := d.createIndexes(ctx); err != nil {
			d.closeEmbedded()
			return nil, err
		}
		if err := d.openIndex(ctx); err != nil {
			// Everything still works, reading the documents: slowly.
			log.Error("store: the embedded index is unavailable; reads scan the collections", "err", err)
		}
	}
	if d.index != nil {
		d.startIndex()
	}
	d.writers.Add(2)
	go func() { defer d.writers.Done(); d.messages.run() }()
	go func() { defer d.writers.Done(); d.notifications.run() }()
	d.wg.Add(2)
	go func() { defer d.wg.Done(); d.ensureIndexesLoop(bg) }()
	go func() { defer d.wg.Done(); d.runOutboxDeleter(d.stopOutbox) }()
	if d.memOut != nil {
		d.wg.Add(1)
		go func() { defer d.wg.Done(); d.runWatermark(d.stopOutbox) }()
	}
	return d, nil
}

// Close finishes the writes already accepted, then disconnects (and stops the embedded store).
func (d *DB) Close(ctx context.Context) error {
	d.messages.close()
	d.notifications.close()
	d.writers.Wait()
	close(d.stopOutbox)
	d.stop()
	d.wg.Wait()
	if d.memOut != nil {
		d.persistOpen(ctx)
	}
	if d.index != nil {
		d.stopIndex() // written back last: everything above may have changed it
	}
	err := d.client.Disconnect(ctx)
	d.closeEmbedded()
	return err
}

func (d *DB) closeEmbedded() {
	if d.embedded != nil {
		d.embedded.Close()
	}
}

// pingTimeout bounds Ping: readiness must answer within a second, whatever STORE_TIMEOUT is.
const pingTimeout = 750 * time.Millisecond

// Ping reports whether the database answers (for /readyz), within pingTimeout.
func (d *DB) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, min(d.timeout, pingTimeout))
	defer cancel()
	if err := d.client.Ping(ctx, readpref.Primary()); err != nil {
		return d.fail("ping", err)
	}
	return nil
}

// IndexesReady is closed once the indexes exist.
func (d *DB) IndexesReady() <-chan struct{} { return d.indexesDone }

// call runs fn under the store's deadline and maps its error.
func (d *DB) call(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	return d.callWithin(ctx, d.timeout, op, fn)
}

// callWithin is call with another deadline (index builds).
func (d *DB) callWithin(ctx context.Context, timeout time.Duration, op string, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return d.fail(op, fn(ctx))
}

// indexBuildTimeout bounds building one index: over a large collection it
// takes far longer than any other call (about 1 s per 100,000 documents on
// the embedded store).
const indexBuildTimeout = 10 * time.Minute

// fail maps a driver error to a domain error: no answer in time (or no
// server) is ErrStorageUnavailable, which callers may retry; anything else the
// server said is internal.
func (d *DB) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	var ce *commserver.Error
	if errors.As(err, &ce) {
		return err
	}
	if unavailable(err) {
		return &commserver.Error{Code: commserver.CodeStorageUnavailable,
			Message: "the database is unavailable; try again shortly", Err: fmt.Errorf("%s: %w", op, err)}
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || mongo.IsTimeout(err) || mongo.IsNetworkError(err) ||
		errors.Is(err, mongo.ErrClientDisconnected) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var se mongo.ServerError
	if errors.As(err, &se) {
		return false
	}
	// Server selection failures and pool errors are neither server errors nor
	// typed consistently across driver versions: no server answered.
	msg := err.Error()
	return strings.Contains(msg, "server selection") || strings.Contains(msg, "connection")
}

// isNotImplemented reports whether the server lacks a feature (FerretDB's
// answer for TTL indexes, $lookup, $first and $last). It is the one place
// that decides when to fall back.
func isNotImplemented(err error) bool {
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		return ce.Code == 238 || ce.Name == "NotImplemented"
	}
	return err != nil && strings.Contains(err.Error(), "NotImplemented")
}

// ensureIndexesLoop creates the indexes, retrying with backoff until the
// database answers or the store closes.
func (d *DB) ensureIndexesLoop(ctx context.Context) {
	wait := 200 * time.Millisecond
	for {
		err := d.createIndexes(ctx)
		if err == nil {
			return
		}
		d.log.Error("store: creating indexes failed; retrying", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, 30*time.Second)
	}
}

// indexesCreated reports whether the indexes exist.
func (d *DB) indexesCreated() bool {
	select {
	case <-d.indexesDone:
		return true
	default:
		return false
	}
}

// createIndexes creates the indexes unless that was done. Besides the
// background loop, a caller that relies on an index calls it, so that a
// database that was down when the server started gets its indexes as soon
// as it answers, not at the loop's next backoff.
func (d *DB) createIndexes(ctx context.Context) error {
	select {
	case d.indexesMu <- struct{}{}:
		defer func() { <-d.indexesMu }()
	case <-ctx.Done():
		return d.fail("create indexes", ctx.Err())
	}
	if d.indexesCreated() {
		return nil
	}
	if err := d.ensureIndexes(ctx); err != nil {
		return err
	}
	if d.embedded != nil {
		// Every collection exists now: give each the _id index FerretDB lacks.
		if err := d.embedded.IndexIDs(ctx); err != nil {
			return err
		}
	}
	close(d.indexesDone)
	return nil
}

func (d *DB) ensureIndexes(ctx context.Context) error {
	type idx struct {
		col  string
		keys bson.D
		opts *options.IndexOptionsBuilder
	}
	all := []idx{
		{colMessages, bson.D{{Key: "chatRoomId", Value: 1}, {Key: "timestamp", Value: -1}}, nil},
		{colMessages, bson.D{{Key: "senderId", Value: 1}}, nil},
		{colMessages, bson.D{{Key: "clientMessageKey", Value: 1}}, options.Index().SetUnique(true).SetSparse(true)},
		{colNotifications, bson.D{{Key: "userId", Value: 1}, {Key: "createdAt", Value: -1}}, nil},
		{colNotifications, bson.D{{Key: "userId", Value: 1}, {Key: "isRead", Value: 1}}, nil},
		{colNotifications, bson.D{{Key: "expiresAt", Value: 1}}, options.Index().SetExpireAfterSeconds(0)},
		{colSMSLogs, bson.D{{Key: "timestamp", Value: -1}}, nil},
		{colSMSLogs, bson.D{{Key: "twilioSid", Value: 1}}, nil},
		// The scheduler's reads (store/jobs.go, store/goals.go).
		{colNotifications, bson.D{{Key: "type", Value: 1}, {Key: "createdAt", Value: 1}}, nil},
		{colJobRuns, bson.D{{Key: "job", Value: 1}, {Key: "startedAt", Value: -1}}, nil},
		{colJobDeliveries, bson.D{{Key: "job", Value: 1}, {Key: "period", Value: 1}}, nil},
		{colJobDeliveries, bson.D{{Key: "at", Value: 1}}, nil},
		{colConnections, bson.D{{Key: "lastConnectedAt", Value: 1}}, nil},
		{colArchive, bson.D{{Key: "chatRoomId", Value: 1}, {Key: "timestamp", Value: -1}}, nil},
		{colGoals, bson.D{{Key: "userId", Value: 1}}, nil},
		{colOutbox, bson.D{{Key: "until", Value: 1}}, nil},
	}
	if err := d.ensureCollections(ctx); err != nil {
		return err
	}
	for _, ix := range all {
		if d.embedded != nil && ix.opts == nil {
			// FerretDB's SQLite backend pushes down nothing but _id
			// equality: a secondary index is never read, only maintained,
			// an expression index parsing the document's JSON on every
			// insert (a fifth of the insert's CPU each). The embedded
			// store's own index (index.go) serves those reads; unique
			// indexes stay, for what they guarantee. Ones an earlier
			// version created are dropped.
			d.dropEmbeddedIndex(ctx, ix.col, ix.keys)
			continue
		}
		err := d.callWithin(ctx, max(d.timeout, indexBuildTimeout), "create index", func(ctx context.Context) error {
			_, err := d.db.Collection(ix.col).Indexes().CreateOne(ctx, mongo.IndexModel{Keys: ix.keys, Options: ix.opts})
			return err
		})
		if err != nil && isNotImplemented(err) {
			// FerretDB has no TTL monitor: expired notifications are filtered
			// out on read and removed by the cleanup job instead.
			d.log.Info("store: index not supported by this server; falling back", "collection", ix.col, "keys", ix.keys, "err", err)
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// dropEmbeddedIndex drops a secondary index an earlier version created on
// the embedded store, if it is there.
func (d *DB) dropEmbeddedIndex(ctx context.Context, col string, keys bson.D) {
	name := ""
	for i, k := range keys {
		if i > 0 {
			name += "_"
		}
		name += fmt.Sprintf("%s_%v", k.Key, k.Value)
	}
	err := d.callWithin(ctx, d.timeout, "drop index", func(ctx context.Context) error {
		return d.db.Collection(col).Indexes().DropOne(ctx, name)
	})
	if err == nil {
		d.log.Info("store: dropped a secondary index the embedded store never reads", "collection", col, "index", name)
	}
}

// startIndex hooks the embedded index to the writers and starts its write-back.
func (d *DB) startIndex() {
	x := d.index
	memOut := d.messages.after
	d.messages.after = func(docs []any) {
		x.addMessages(messageDocs(docs), false)
		if memOut != nil {
			memOut(docs)
		}
	}
	d.notifications.after = func(docs []any) { x.unread(notificationDocs(docs)) }
	d.stopIdx, d.idxDone = make(chan struct{}), make(chan struct{})
	go func() { defer close(d.idxDone); x.run(d.stopIdx) }()
}

// stopIndex writes the index back and records whether it can be trusted next time.
func (d *DB) stopIndex() {
	close(d.stopIdx)
	<-d.idxDone
}

// ensureCollections creates the collections of the embedded index (the
// others come with their indexes), so that Embedded.IndexIDs finds them.
func (d *DB) ensureCollections(ctx context.Context) error {
	if d.embedded == nil {
		return nil
	}
	for _, col := range []string{colRoomTails, colKeys, colUnread, IndexStateCollection} {
		err := d.call(ctx, "create collection", func(ctx context.Context) error {
			return d.db.CreateCollection(ctx, col)
		})
		var ce mongo.CommandError
		if err != nil && !(errors.As(err, &ce) && ce.Code == 48) { // NamespaceExists
			return err
		}
	}
	return nil
}

// idValue is how an id is stored: ids that look like ObjectIds are ObjectIds
// (as Mongoose cast them); anything else stays a string.
func idValue(id string) any {
	if oid, err := bson.ObjectIDFromHex(id); err == nil && len(id) == 24 {
		return oid
	}
	return id
}

// idValues maps idValue over ids.
func idValues(ids []string) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = idValue(id)
	}
	return out
}

// idString turns a stored id back into the string the domain uses.
func idString(v any) string {
	switch t := v.(type) {
	case bson.ObjectID:
		return t.Hex()
	case string:
		return t
	case nil:
		return ""
	default:
		return fmt.Sprint(t)
	}
}

// objectID parses a hex id the caller gave for a document we key by ObjectId.
func objectID(field, id string) (bson.ObjectID, error) {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return bson.ObjectID{}, commserver.Invalid(field, "%s must be a 24-character hexadecimal id", field)
	}
	return oid, nil
}

// all runs a query under the store's deadline and decodes every document it
// returns into out (a pointer to a slice).
func (d *DB) all(ctx context.Context, op string, out any, query func(ctx context.Context) (*mongo.Cursor, error)) error {
	return d.call(ctx, op, func(ctx context.Context) error {
		cur, err := query(ctx)
		if err != nil {
			return err
		}
		return cur.All(ctx, out)
	})
}

package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	commserver "github.com/fitmate/commserver"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The embedded store's index.
//
// FerretDB over SQLite reads every document of a collection for any query
// but one on _id alone (which Embedded makes an index search), so on the
// embedded store a room's history, a retried clientMessageId and an unread
// count would each read the whole collection: seconds at 100,000 documents.
// For the embedded store only, this index keeps what those three need in
// documents of its own, each found by _id:
//
//   - chatroomtails: per room, copies of its newest tailSize messages and
//     its message counts (all, and not deleted), packed into one binary field
//     (FerretDB decodes a document field by field; one field is cheap);
//   - chatmessagekeys: per clientMessageKey, the message's _id;
//   - notificationunread: per user, the ids and expiry of their unread
//     notifications.
//
// Why that is exact. The embedded store belongs to this process alone (its
// port is a random loopback one), so every write to the documents goes
// through this package, which updates the index in memory under one lock,
// in the order the database acknowledged the writes, before anyone hears of
// them; a background loop writes what changed to the index's collections
// (write-back). A write whose outcome is unknown (no answer in time) marks
// its room or user stale: reads of it go to the documents for the rest of
// the run. Concurrent changes to one user's unread set touch different ids
// (create adds the new one; read, delete and read-all remove the ones they
// changed), so their order does not matter, and an expired notification is
// left out by the clock at read time. The index is trusted at start only if
// the previous run closed cleanly with nothing stale (commserverstate says
// so); otherwise (a crash between a write and the index's write-back, a
// first start over documents written by something else) it is rebuilt from
// the documents before the store serves: one pass over chatmessages and one
// over notifications.
//
// MongoDB has real indexes for all three queries: there, none of this runs.

// The index's collections and its state document.
const (
	colRoomTails = "chatroomtails"
	colKeys      = "chatmessagekeys"
	colUnread    = "notificationunread"
	// IndexStateCollection holds the embedded index's state document: delete
	// it after writing to the embedded store's files with another program,
	// and the next start rebuilds the index (package storetest does).
	IndexStateCollection = "commserverstate"
	// IndexStateID is the _id of that document.
	IndexStateID = "embeddedIndex"
)

const (
	indexVersion   = 1
	tailSize       = 100             // messages copied per room: history's 50, and room for deletions
	indexFlushWait = 5 * time.Second // how often changes are written back (a clean close writes the rest; an unclean one rebuilds)
	maxCachedTails = 2048            // clean entries kept in memory beyond these are dropped
	maxCachedSets  = 8192
	maxUnreadIDs   = 100_000 // a user's unread set past this is counted from the documents
	rebuildBatch   = 500
)

type indexState struct {
	ID      string    `bson:"_id"`
	Clean   bool      `bson:"clean"`
	Version int32     `bson:"version"`
	BuiltAt time.Time `bson:"builtAt"`
}

// roomTail is a room's newest messages (newest first) and its counts.
type roomTail struct {
	msgs  []messageDoc
	total int64 // messages of the room, deleted or not
	live  int64 // not deleted
	dirty bool
}

// unreadSet is a user's unread notifications: id → expiresAt in Unix
// milliseconds (0: never).
type unreadSet struct {
	ids      map[bson.ObjectID]int64
	overflow bool // past maxUnreadIDs: counted from the documents
	dirty    bool
}

func (s *unreadSet) count(now time.Time) int64 {
	ms := now.UnixMilli()
	var n int64
	for _, exp := range s.ids {
		if exp == 0 || exp > ms {
			n++
		}
	}
	return n
}

type tailDoc struct {
	ID    string `bson:"_id"`
	Total int64  `bson:"total"`
	Live  int64  `bson:"live"`
	Msgs  []byte `bson:"msgs"` // the copies, each a BSON document, newest first
}

type unreadDoc struct {
	ID       string `bson:"_id"`
	Entries  []byte `bson:"entries"` // 12-byte id, 8-byte expiresAt (ms), per notification
	Overflow bool   `bson:"overflow,omitempty"`
}

type keyDoc struct {
	ID      string        `bson:"_id"` // clientMessageKey
	Message bson.ObjectID `bson:"m"`
}

// embeddedIndex is the index of one embedded store (see above).
type embeddedIndex struct {
	d *DB

	loadMu sync.Mutex // serialises loads from the collections with evictions
	mu     sync.Mutex // guards everything below
	tails  map[string]*roomTail
	sets   map[string]*unreadSet
	keys   map[string]bson.ObjectID // client keys not yet written back
	stale  map[string]bool          // "room:" or "user:" + id: read from the documents
	// untrusted sends every read to the documents for the rest of the run:
	// a write whose outcome is unknown did not say which room it touched.
	untrusted bool
	// withUnread holds every user who has (or had, this run) an unread set
	// document: anyone else has none, and their set is empty without a read.
	// A connect storm of users without unread notifications then costs no
	// read per user. nil until openIndex has listed the documents.
	withUnread map[string]struct{}
}

func newEmbeddedIndex(d *DB) *embeddedIndex {
	return &embeddedIndex{d: d, tails: map[string]*roomTail{}, sets: map[string]*unreadSet{},
		keys: map[string]bson.ObjectID{}, stale: map[string]bool{}}
}

// openIndex makes the embedded index ready: trusted as left by a clean
// close, or rebuilt. The state is set unclean until Close says otherwise.
func (d *DB) openIndex(ctx context.Context) error {
	x := newEmbeddedIndex(d)
	var st indexState
	err := d.call(ctx, "read index state", func(ctx context.Context) error {
		return d.db.Collection(IndexStateCollection).FindOne(ctx, bson.M{"_id": IndexStateID}).Decode(&st)
	})
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return err
	}
	if !st.Clean || st.Version != indexVersion {
		start := time.Now()
		d.log.Info("store: building the embedded store's index from the documents", "reason", rebuildReason(err, st))
		// After an unclean stop, messages from the outbox watermark on may
		// be stored and never published (memoutbox.go): the pass over the
		// messages hands them to the first sweep.
		var since time.Time
		if err == nil && !st.Clean && d.memOut != nil {
			if since, err = d.readWatermark(ctx); err != nil {
				return err
			}
		}
		n, unpublished, err := x.rebuild(ctx, since)
		if err != nil {
			return fmt.Errorf("store: build the embedded index: %w", err)
		}
		if len(unpublished) > 0 {
			d.log.Info("store: messages stored before an unclean stop may not have been published; the sweep publishes them",
				"messages", len(unpublished), "since", since)
			docs := make([]any, len(unpublished))
			for i, m := range unpublished {
				docs[i] = m
			}
			// Claimable after a live claim, as chatoutbox's entries are: the
			// clients of the dead process have reconnected by then.
			d.memOut.stored(docs, time.Now().Add(d.liveClaim()))
		}
		d.log.Info("store: built the embedded store's index", "documents", n, "took", time.Since(start).Round(time.Millisecond))
	}
	if d.memOut != nil {
		// From now on a crash is covered: what was found above stays open
		// (and holds the watermark back) until a sweep publishes it.
		if err := d.writeWatermark(ctx); err != nil {
			return err
		}
	}
	if err := x.listUnread(ctx); err != nil {
		return fmt.Errorf("store: list the embedded index's unread sets: %w", err)
	}
	if err := x.writeState(ctx, false); err != nil {
		return err
	}
	d.index = x
	return nil
}

// hasNoUnread reports a user known to have no unread notification: no set
// in memory and no document.
func (x *embeddedIndex) hasNoUnread(user string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.untrusted || x.withUnread == nil || x.sets[user] != nil {
		return false
	}
	_, has := x.withUnread[user]
	return !has
}

// listUnread reads which users have an unread set document (their ids only).
func (x *embeddedIndex) listUnread(ctx context.Context) error {
	cur, err := x.d.db.Collection(colUnread).Find(ctx, bson.M{}, options.Find().SetProjection(bson.M{"_id": 1}).SetBatchSize(5000))
	if err != nil {
		return err
	}
	users := map[string]struct{}{}
	for cur.Next(ctx) {
		var doc struct {
			ID string `bson:"_id"`
		}
		if err := cur.Decode(&doc); err != nil {
			cur.Close(ctx)
			return err
		}
		users[doc.ID] = struct{}{}
	}
	if err := errors.Join(cur.Err(), cur.Close(ctx)); err != nil {
		return err
	}
	x.mu.Lock()
	x.withUnread = users
	x.mu.Unlock()
	return nil
}

func rebuildReason(err error, st indexState) string {
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return "no index yet"
	case st.Version != indexVersion:
		return "index format changed"
	default:
		return "the last run did not close cleanly"
	}
}

func (x *embeddedIndex) writeState(ctx context.Context, clean bool) error {
	return x.d.call(ctx, "write index state", func(ctx context.Context) error {
		_, err := x.d.db.Collection(IndexStateCollection).ReplaceOne(ctx, bson.M{"_id": IndexStateID},
			indexState{ID: IndexStateID, Clean: clean, Version: indexVersion, BuiltAt: time.Now().UTC().Truncate(time.Millisecond)},
			options.Replace().SetUpsert(true))
		return err
	})
}

// rebuild recomputes the index's collections from the documents. It runs
// before the store serves, so nothing changes meanwhile. With since set, it
// also returns the messages created from then on (oldest first).
func (x *embeddedIndex) rebuild(ctx context.Context, since time.Time) (int, []messageDoc, error) {
	d := x.d
	var unpublished []messageDoc
	for _, col := range []string{colRoomTails, colKeys, colUnread} {
		if err := d.db.Collection(col).Drop(ctx); err != nil {
			return 0, nil, err
		}
	}
	n := 0
	tails := map[string]*roomTail{}
	var keys []any
	flushKeys := func() error {
		if len(keys) == 0 {
			return nil
		}
		_, err := d.db.Collection(colKeys).InsertMany(ctx, keys, options.InsertMany().SetOrdered(false))
		keys = keys[:0]
		if isDuplicatesOnly(err) {
			return nil
		}
		return err
	}
	cur, err := d.db.Collection(colMessages).Find(ctx, bson.M{}, options.Find().SetBatchSize(1000))
	if err != nil {
		return 0, nil, err
	}
	for cur.Next(ctx) {
		var m messageDoc
		if err := cur.Decode(&m); err != nil {
			cur.Close(ctx)
			return n, nil, err
		}
		n++
		if !since.IsZero() && !m.CreatedAt.Before(since) {
			unpublished = append(unpublished, m)
		}
		t := tails[m.ChatRoomID]
		if t == nil {
			t = &roomTail{}
			tails[m.ChatRoomID] = t
		}
		t.add(m)
		if m.ClientMessageKey != "" {
			keys = append(keys, keyDoc{ID: m.ClientMessageKey, Message: m.ID})
			if len(keys) == rebuildBatch*2 {
				if err := flushKeys(); err != nil {
					cur.Close(ctx)
					return n, nil, err
				}
			}
		}
	}
	if err := errors.Join(cur.Err(), cur.Close(ctx), flushKeys()); err != nil {
		return n, nil, err
	}
	var docs []any
	insert := func(col string, force bool) error {
		if len(docs) == 0 || (!force && len(docs) < rebuildBatch) {
			return nil
		}
		_, err := d.db.Collection(col).InsertMany(ctx, docs)
		docs = docs[:0]
		return err
	}
	for room, t := range tails {
		docs = append(docs, t.doc(room))
		if err := insert(colRoomTails, false); err != nil {
			return n, nil, err
		}
	}
	if err := insert(colRoomTails, true); err != nil {
		return n, nil, err
	}

	now := time.Now()
	sets := map[string]*unreadSet{}
	cur, err = d.db.Collection(colNotifications).Find(ctx, bson.M{"isRead": false}, options.Find().SetBatchSize(1000))
	if err != nil {
		return n, nil, err
	}
	for cur.Next(ctx) {
		var doc notificationDoc
		if err := cur.Decode(&doc); err != nil {
			cur.Close(ctx)
			return n, nil, err
		}
		n++
		if doc.ExpiresAt != nil && !doc.ExpiresAt.After(now) {
			continue
		}
		u := idString(doc.UserID)
		s := sets[u]
		if s == nil {
			s = &unreadSet{ids: map[bson.ObjectID]int64{}}
			sets[u] = s
		}
		s.add(doc.ID, doc.ExpiresAt)
	}
	if err := errors.Join(cur.Err(), cur.Close(ctx)); err != nil {
		return n, nil, err
	}
	for u, s := range sets {
		docs = append(docs, s.doc(u))
		if err := insert(colUnread, false); err != nil {
			return n, nil, err
		}
	}
	if err := insert(colUnread, true); err != nil {
		return n, nil, err
	}
	// The dropped collections came back as new tables: index their _id.
	if err := d.ensureCollections(ctx); err != nil {
		return n, nil, err
	}
	return n, unpublished, d.embedded.IndexIDs(ctx)
}

// isDuplicatesOnly reports whether err is a bulk write error of duplicate keys only.
func isDuplicatesOnly(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if !we.HasErrorCode(11000) {
			return false
		}
	}
	return true
}

// Room tails.

// newestFirstDoc orders messages as history does: by timestamp, then _id, newest first.
func newestFirstDoc(a, b messageDoc) int {
	if c := b.Timestamp.Compare(a.Timestamp); c != 0 {
		return c
	}
	for i := range b.ID {
		if c := cmp.Compare(b.ID[i], a.ID[i]); c != 0 {
			return c
		}
	}
	return 0
}

// add counts m and keeps it if it is among the newest tailSize.
func (t *roomTail) add(m messageDoc) {
	t.total++
	if !m.IsDeleted {
		t.live++
	}
	i, _ := slices.BinarySearchFunc(t.msgs, m, newestFirstDoc)
	if i >= tailSize {
		return
	}
	t.msgs = slices.Insert(t.msgs, i, m)
	if len(t.msgs) > tailSize {
		t.msgs = t.msgs[:tailSize]
	}
}

func (t *roomTail) has(id bson.ObjectID) bool {
	return slices.ContainsFunc(t.msgs, func(m messageDoc) bool { return m.ID == id })
}

func (t *roomTail) doc(room string) tailDoc {
	var b []byte
	for _, m := range t.msgs {
		raw, err := bson.Marshal(m)
		if err != nil {
			continue // cannot happen: it was decoded from BSON or built by us
		}
		b = append(b, raw...)
	}
	return tailDoc{ID: room, Total: t.total, Live: t.live, Msgs: b}
}

func tailFromDoc(doc tailDoc) (*roomTail, error) {
	t := &roomTail{total: doc.Total, live: doc.Live}
	b := doc.Msgs
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, errors.New("truncated room tail")
		}
		n := int(binary.LittleEndian.Uint32(b))
		if n < 5 || n > len(b) {
			return nil, errors.New("corrupt room tail")
		}
		var m messageDoc
		if err := bson.Unmarshal(b[:n], &m); err != nil {
			return nil, err
		}
		t.msgs = append(t.msgs, m)
		b = b[n:]
	}
	return t, nil
}

// Unread sets.

func (s *unreadSet) add(id bson.ObjectID, expires *time.Time) {
	if len(s.ids) >= maxUnreadIDs {
		s.overflow = true
		return
	}
	var exp int64
	if expires != nil {
		exp = max(expires.UnixMilli(), 1)
	}
	s.ids[id] = exp
}

func (s *unreadSet) doc(user string) unreadDoc {
	b := make([]byte, 0, 20*len(s.ids))
	for id, exp := range s.ids {
		b = append(b, id[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(exp))
	}
	return unreadDoc{ID: user, Entries: b, Overflow: s.overflow}
}

func setFromDoc(doc unreadDoc) (*unreadSet, error) {
	if len(doc.Entries)%20 != 0 {
		return nil, errors.New("corrupt unread set")
	}
	s := &unreadSet{ids: make(map[bson.ObjectID]int64, len(doc.Entries)/20), overflow: doc.Overflow}
	for b := doc.Entries; len(b) > 0; b = b[20:] {
		s.ids[bson.ObjectID(b[:12])] = int64(binary.BigEndian.Uint64(b[12:20]))
	}
	return s, nil
}

// Loading entries: an entry absent from memory is read from its document
// (absent document: an empty room or a user with nothing unread). Dirty
// entries are never dropped from memory, so the document of an absent entry
// is up to date.

func (x *embeddedIndex) tail(ctx context.Context, room string) (*roomTail, error) {
	x.mu.Lock()
	t := x.tails[room]
	x.mu.Unlock()
	if t != nil {
		return t, nil
	}
	return loadEntry(ctx, x, x.tails, room, colRoomTails, "read room tail", func() *roomTail { return &roomTail{} }, tailFromDoc)
}

func (x *embeddedIndex) set(ctx context.Context, user string) (*unreadSet, error) {
	x.mu.Lock()
	s := x.sets[user]
	if s == nil && x.withUnread != nil {
		if _, has := x.withUnread[user]; !has { // no document: an empty set, no read
			s = &unreadSet{ids: map[bson.ObjectID]int64{}}
			x.sets[user] = s
		}
	}
	x.mu.Unlock()
	if s != nil {
		return s, nil
	}
	return loadEntry(ctx, x, x.sets, user, colUnread, "read unread set",
		func() *unreadSet { return &unreadSet{ids: map[bson.ObjectID]int64{}} }, setFromDoc)
}

// loadEntry reads the entry key of m (guarded by x.mu) from its document in
// col, once however many callers miss it together (x.loadMu): an absent
// document is an empty entry.
func loadEntry[E, D any](ctx context.Context, x *embeddedIndex, m map[string]*E, key, col, what string,
	empty func() *E, fromDoc func(D) (*E, error)) (*E, error) {
	x.loadMu.Lock()
	defer x.loadMu.Unlock()
	x.mu.Lock()
	e := m[key]
	x.mu.Unlock()
	if e != nil {
		return e, nil
	}
	var doc D
	err := x.d.call(ctx, what, func(ctx context.Context) error {
		return x.d.db.Collection(col).FindOne(ctx, bson.M{"_id": key}).Decode(&doc)
	})
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		e = empty()
	case err != nil:
		return nil, err
	default:
		if e, err = fromDoc(doc); err != nil {
			return nil, err
		}
	}
	x.mu.Lock()
	m[key] = e
	x.mu.Unlock()
	return e, nil
}

// isStale reports whether reads of key must go to the documents.
func (x *embeddedIndex) isStale(key string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.untrusted || x.stale[key]
}

// distrust sends every read to the documents for the rest of the run (and
// makes the next start rebuild the index).
func (x *embeddedIndex) distrust(why string) {
	x.mu.Lock()
	x.untrusted = true
	x.mu.Unlock()
	x.d.log.Warn("store: the embedded index is not trusted for the rest of this run; reading from the documents", "why", why)
}

// markStale sends reads of these keys to the documents for the rest of the
// run (and makes the next start rebuild the index).
func (x *embeddedIndex) markStale(kind string, ids ...string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, id := range ids {
		x.stale[kind+id] = true
		if kind == "room:" {
			delete(x.tails, id)
		} else {
			delete(x.sets, id)
		}
	}
	x.d.log.Warn("store: an index entry is stale after a write with no answer; reading it from the documents until the next start",
		"entries", ids, "kind", kind)
}

// withTail applies fn to the room's tail unless it is stale; a tail that
// cannot be loaded makes it stale.
func (x *embeddedIndex) withTail(room string, fn func(t *roomTail)) {
	if x.isStale("room:" + room) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), x.d.timeout)
	defer cancel()
	t, err := x.tail(ctx, room)
	if err != nil {
		x.markStale("room:", room)
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.untrusted || x.stale["room:"+room] {
		return
	}
	fn(t)
	t.dirty = true
}

func (x *embeddedIndex) withSet(user string, fn func(s *unreadSet)) {
	if x.isStale("user:" + user) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), x.d.timeout)
	defer cancel()
	s, err := x.set(ctx, user)
	if err != nil {
		x.markStale("user:", user)
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.untrusted || x.stale["user:"+user] {
		return
	}
	fn(s)
	s.dirty = true
	if x.withUnread != nil && len(s.ids) > 0 {
		x.withUnread[user] = struct{}{} // its document is written back soon
	}
}

// Changes, called once the database acknowledged the write.

// addMessages indexes stored messages; skipPresent leaves out those the
// tail holds already (a message the sweeper found, which the live path may
// have indexed).
func (x *embeddedIndex) addMessages(docs []messageDoc, skipPresent bool) {
	byRoom := map[string][]messageDoc{}
	for _, m := range docs {
		byRoom[m.ChatRoomID] = append(byRoom[m.ChatRoomID], m)
	}
	for room, ms := range byRoom {
		x.withTail(room, func(t *roomTail) {
			for _, m := range ms {
				if !skipPresent || !t.has(m.ID) {
					t.add(m)
				}
			}
		})
	}
	x.mu.Lock()
	for _, m := range docs {
		if m.ClientMessageKey != "" {
			x.keys[m.ClientMessageKey] = m.ID
		}
	}
	x.mu.Unlock()
}

// deleted records that a message was soft-deleted; wasLive says it was not before.
func (x *embeddedIndex) deleted(after messageDoc, wasLive bool) {
	x.withTail(after.ChatRoomID, func(t *roomTail) {
		if wasLive {
			t.live--
		}
		for i := range t.msgs {
			if t.msgs[i].ID == after.ID {
				t.msgs[i] = after
			}
		}
	})
}

// readBy records MarkRoomRead: user is added to readBy of the room's
// messages from others that did not have it.
func (x *embeddedIndex) readBy(room string, user any) {
	uid := idString(user)
	x.withTail(room, func(t *roomTail) {
		for i := range t.msgs {
			m := &t.msgs[i]
			if idString(m.SenderID) == uid || slices.ContainsFunc(m.ReadBy, func(r any) bool { return idString(r) == uid }) {
				continue
			}
			m.ReadBy = append(slices.Clip(m.ReadBy), user)
		}
	})
}

// unread adds stored unread notifications to their users' sets.
func (x *embeddedIndex) unread(docs []notificationDoc) {
	for _, doc := range docs {
		if doc.IsRead {
			continue
		}
		x.withSet(idString(doc.UserID), func(s *unreadSet) { s.add(doc.ID, doc.ExpiresAt) })
	}
}

// read removes notifications from a user's set (read or deleted).
func (x *embeddedIndex) read(user string, ids ...bson.ObjectID) {
	x.withSet(user, func(s *unreadSet) {
		for _, id := range ids {
			delete(s.ids, id)
		}
	})
}

// expired drops the users' notifications that expired by now (deleted by
// the cleanup): a clock that goes back must not count them again.
func (x *embeddedIndex) expired(users []string, now time.Time) {
	ms := now.UnixMilli()
	for _, u := range users {
		x.withSet(u, func(s *unreadSet) {
			for id, exp := range s.ids {
				if exp != 0 && exp <= ms {
					delete(s.ids, id)
				}
			}
		})
	}
}

// removed records that messages were deleted for good (moved to the archive).
func (x *embeddedIndex) removed(docs []messageDoc) {
	byRoom := map[string][]messageDoc{}
	for _, m := range docs {
		byRoom[m.ChatRoomID] = append(byRoom[m.ChatRoomID], m)
	}
	for room, ms := range byRoom {
		x.withTail(room, func(t *roomTail) {
			for _, m := range ms {
				t.total--
				if !m.IsDeleted {
					t.live--
				}
				t.msgs = slices.DeleteFunc(t.msgs, func(c messageDoc) bool { return c.ID == m.ID })
			}
		})
	}
}

// unindexDeleted updates the index after a delete of these messages (each
// conditioned on its version): those now gone are removed; with no answer,
// their rooms are read from the documents from now on.
func (d *DB) unindexDeleted(ctx context.Context, docs []messageDoc, err error) {
	if err != nil && !errors.Is(err, commserver.ErrStorageUnavailable) {
		err = nil // the server refused some deletes: look which ones went
	}
	var gone []messageDoc
	for _, m := range docs {
		if err == nil {
			_, err2 := d.messageByID(ctx, m.ID)
			if errors.Is(err2, mongo.ErrNoDocuments) {
				gone = append(gone, m)
				continue
			}
			if err2 == nil {
				continue // kept: changed since it was copied
			}
		}
		d.index.markStale("room:", m.ChatRoomID)
	}
	d.index.removed(gone)
}

// Lookups.

// messageOfKey returns the _id of the message stored with this client key;
// found is false when no record says (the caller asks the documents).
func (x *embeddedIndex) messageOfKey(ctx context.Context, key string) (bson.ObjectID, bool, error) {
	x.mu.Lock()
	id, ok := x.keys[key]
	x.mu.Unlock()
	if ok {
		return id, true, nil
	}
	var doc keyDoc
	err := x.d.call(ctx, "find client message key", func(ctx context.Context) error {
		return x.d.db.Collection(colKeys).FindOne(ctx, bson.M{"_id": key}).Decode(&doc)
	})
	if errors.Is(err, mongo.ErrNoDocuments) {
		return bson.ObjectID{}, false, nil
	}
	return doc.Message, err == nil, err
}

// roomView returns a copy of the room's tail for reading, or ok false when
// reads of the room must go to the documents.
func (x *embeddedIndex) roomView(ctx context.Context, room string) (msgs []messageDoc, total, live int64, ok bool) {
	if x.isStale("room:" + room) {
		return nil, 0, 0, false
	}
	t, err := x.tail(ctx, room)
	if err != nil {
		return nil, 0, 0, false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.untrusted || x.stale["room:"+room] {
		return nil, 0, 0, false
	}
	return slices.Clone(t.msgs), t.total, t.live, true
}

// unreadCount returns the user's unread count at now, or ok false when it
// must be counted from the documents.
func (x *embeddedIndex) unreadCount(ctx context.Context, user string, now time.Time) (int64, bool) {
	if x.isStale("user:" + user) {
		return 0, false
	}
	if x.hasNoUnread(user) { // most users on a reconnect storm: nothing to load or keep
		return 0, true
	}
	s, err := x.set(ctx, user)
	if err != nil {
		return 0, false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.untrusted || x.stale["user:"+user] || s.overflow {
		return 0, false
	}
	return s.count(now), true
}

// unreadIDs returns the ids of the user's unread, unexpired notifications.
func (x *embeddedIndex) unreadIDs(ctx context.Context, user string, now time.Time) ([]bson.ObjectID, bool) {
	if x.isStale("user:" + user) {
		return nil, false
	}
	s, err := x.set(ctx, user)
	if err != nil {
		return nil, false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.untrusted || x.stale["user:"+user] || s.overflow {
		return nil, false
	}
	ms := now.UnixMilli()
	var ids []bson.ObjectID
	for id, exp := range s.ids {
		if exp == 0 || exp > ms {
			ids = append(ids, id)
		}
	}
	return ids, true
}

// Write-back.

// run writes changes back every indexFlushWait until stop is closed, then
// once more, and records whether the index may be trusted at the next start.
func (x *embeddedIndex) run(stop <-chan struct{}) {
	t := time.NewTicker(indexFlushWait)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			x.flush()
			x.evict()
		case <-stop:
			ok := false
			for i := 0; i < 3 && !ok; i++ {
				ok = x.flush()
			}
			x.mu.Lock()
			clean := ok && !x.untrusted && len(x.stale) == 0
			x.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), x.d.timeout)
			defer cancel()
			if err := x.writeState(ctx, clean); err != nil {
				x.d.log.Warn("store: recording the embedded index's state; it is rebuilt at the next start", "err", err)
			}
			return
		}
	}
}

// flush writes the changed entries back; it reports whether all were written.
func (x *embeddedIndex) flush() bool {
	x.mu.Lock()
	var tails, sets []mongo.WriteModel
	var tailRooms, setUsers []string
	for room, t := range x.tails {
		if t.dirty {
			t.dirty = false
			tailRooms = append(tailRooms, room)
			tails = append(tails, mongo.NewReplaceOneModel().SetFilter(bson.M{"_id": room}).SetReplacement(t.doc(room)).SetUpsert(true))
		}
	}
	for user, s := range x.sets {
		if s.dirty {
			s.dirty = false
			setUsers = append(setUsers, user)
			sets = append(sets, mongo.NewReplaceOneModel().SetFilter(bson.M{"_id": user}).SetReplacement(s.doc(user)).SetUpsert(true))
		}
	}
	var keys []any
	for k, id := range x.keys {
		keys = append(keys, keyDoc{ID: k, Message: id})
	}
	x.mu.Unlock()

	ok := true
	write := func(col string, models []mongo.WriteModel, redirty func()) {
		if len(models) == 0 {
			return
		}
		err := x.d.call(context.Background(), "write back "+col, func(ctx context.Context) error {
			_, err := x.d.db.Collection(col).BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
			return err
		})
		if err != nil {
			ok = false
			x.d.log.Warn("store: writing the embedded index back; retrying", "collection", col, "entries", len(models), "err", err)
			x.mu.Lock()
			redirty()
			x.mu.Unlock()
		}
	}
	write(colRoomTails, tails, func() {
		for _, r := range tailRooms {
			if t := x.tails[r]; t != nil {
				t.dirty = true
			}
		}
	})
	write(colUnread, sets, func() {
		for _, u := range setUsers {
			if s := x.sets[u]; s != nil {
				s.dirty = true
			}
		}
	})
	if len(keys) > 0 {
		err := x.d.call(context.Background(), "write back client keys", func(ctx context.Context) error {
			_, err := x.d.db.Collection(colKeys).InsertMany(ctx, keys, options.InsertMany().SetOrdered(false))
			if isDuplicatesOnly(err) {
				return nil
			}
			return err
		})
		if err != nil {
			ok = false
			x.d.log.Warn("store: writing client keys back; retrying", "keys", len(keys), "err", err)
		} else {
			x.mu.Lock()
			for _, k := range keys {
				kd := k.(keyDoc)
				if x.keys[kd.ID] == kd.Message {
					delete(x.keys, kd.ID)
				}
			}
			x.mu.Unlock()
		}
	}
	return ok
}

// evict drops clean entries once memory holds more than its share.
func (x *embeddedIndex) evict() {
	x.loadMu.Lock()
	defer x.loadMu.Unlock()
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.tails) > maxCachedTails {
		for room, t := range x.tails {
			if !t.dirty {
				delete(x.tails, room)
			}
			if len(x.tails) <= maxCachedTails*3/4 {
				break
			}
		}
	}
	if len(x.sets) > maxCachedSets {
		for user, s := range x.sets {
			if !s.dirty {
				delete(x.sets, user)
			}
			if len(x.sets) <= maxCachedSets*3/4 {
				break
			}
		}
	}
}

func messageDocs(docs []any) []messageDoc {
	out := make([]messageDoc, len(docs))
	for i, d := range docs {
		out[i] = d.(messageDoc)
	}
	return out
}

func notificationDocs(docs []any) []notificationDoc {
	out := make([]notificationDoc, len(docs))
	for i, d := range docs {
		out[i] = d.(notificationDoc)
	}
	return out
}

// indexLate adds stored messages the live path did not index (see outbox.go).
func (d *DB) indexLate(docs []messageDoc) {
	if d.index != nil {
		d.index.addMessages(docs, true)
	}
}

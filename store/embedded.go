package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	_ "modernc.org/sqlite" // database/sql driver "sqlite", the one FerretDB uses
)

// Embedded is FerretDB (a MongoDB wire-protocol server) over SQLite files in
// one directory, run in this process: the server's store when MONGODB_URI
// is unset, and cmd/devstore's (a store in its own process, for tests that
// freeze it or share it between servers).
//
// FerretDB v1.24 pushes a filter on _id alone down to SQLite, as
// `WHERE _ferretdb_sjson->'$._id' = ?`, but the index it creates for _id is
// on another expression, so SQLite scans the table anyway: 0.5 s for one
// message among 100,000. Embedded adds, to every collection's table, an index
// on exactly the pushed-down expression, which makes every _id lookup (and
// every update or delete of a document by _id) an index search.
type Embedded struct {
	// URI is the MongoDB URI clients connect to (ending in "/").
	URI string

	dir    string
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
}

// embeddedSQLiteOptions are SQLite settings for FerretDB's files: WAL with
// synchronous=NORMAL commits without an fsync each time. A crash of the
// process loses nothing committed; a power cut may lose the last commits.
const embeddedSQLiteOptions = "?_pragma=synchronous(normal)"

// StartEmbedded runs FerretDB over the SQLite files in dir (created if
// needed), listening on addr (a loopback address; port 0 picks one).
// Close stops it.
func StartEmbedded(dir, addr string, log *slog.Logger) (*Embedded, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("store: embedded: %w", err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("store: embedded: %w", err)
	}
	// FerretDB logs every failed command at WARN with the whole wire message
	// (including the "not implemented" answers we expect); keep its errors only.
	flog := slog.New(log.Handler()).With("component", "ferretdb")
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/" + embeddedSQLiteOptions,
		Logger:    slog.New(levelFloor{base: flog.Handler(), min: slog.LevelError}),
	})
	if err != nil {
		return nil, fmt.Errorf("store: embedded: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Embedded{URI: f.MongoDBURI(), dir: abs, log: log, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		_ = f.Run(ctx) // returns when ctx is canceled
	}()
	return e, nil
}

// Close stops FerretDB.
func (e *Embedded) Close() {
	e.cancel()
	<-e.done
}

// IndexIDs adds the missing _id indexes (see Embedded) to the tables of
// every collection of every database in the directory. It is cheap when
// they exist; building one takes about a second per 100,000 documents.
func (e *Embedded) IndexIDs(ctx context.Context) error {
	files, err := filepath.Glob(filepath.Join(e.dir, "*.sqlite"))
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range files {
		errs = append(errs, indexIDs(ctx, f))
	}
	return errors.Join(errs...)
}

// KeepIndexingIDs runs IndexIDs every interval until ctx is done, for
// collections created meanwhile (cmd/devstore: it does not know its
// clients' collections).
func (e *Embedded) KeepIndexingIDs(ctx context.Context, interval time.Duration) {
	for {
		if err := e.IndexIDs(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("store: embedded: indexing _id", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// sqliteIDIndexSuffix names our index beside FerretDB's own on a table.
const sqliteIDIndexSuffix = "_commserver_id"

// indexIDs adds the _id index to every collection table of one database file.
func indexIDs(ctx context.Context, file string) error {
	db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("store: embedded: %w", err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT table_name FROM "_ferretdb_collections"`)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return nil // no collection yet
		}
		return fmt.Errorf("store: embedded: list tables of %s: %w", filepath.Base(file), err)
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, t)
	}
	rows.Close()
	for _, t := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, t+sqliteIDIndexSuffix, t)
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("store: embedded: index _id of %s: %w", t, err)
		}
	}
	return nil
}

// levelFloor drops records below a level. WithAttrs and WithGroup are
// applied only when a record passes: FerretDB derives a logger with the
// query and its arguments for every statement it runs, and formatting those
// eagerly cost ~4 % of a sending pod's CPU for records that are dropped.
type levelFloor struct {
	base slog.Handler
	min  slog.Level
	with []func(slog.Handler) slog.Handler // in call order
}

func (h levelFloor) Enabled(_ context.Context, l slog.Level) bool { return l >= h.min }

func (h levelFloor) Handle(ctx context.Context, r slog.Record) error {
	x := h.base
	for _, f := range h.with {
		x = f(x)
	}
	return x.Handle(ctx, r)
}

func (h levelFloor) WithAttrs(a []slog.Attr) slog.Handler {
	if len(a) == 0 {
		return h
	}
	h.with = append(slices.Clip(h.with), func(x slog.Handler) slog.Handler { return x.WithAttrs(a) })
	return h
}

func (h levelFloor) WithGroup(n string) slog.Handler {
	if n == "" {
		return h
	}
	h.with = append(slices.Clip(h.with), func(x slog.Handler) slog.Handler { return x.WithGroup(n) })
	return h
}

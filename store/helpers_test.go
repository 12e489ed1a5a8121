package store

import (
	"bytes"
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fitmate/commserver/chat"
	"go.mongodb.org/mongo-driver/v2/bson"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// openTestDB opens the real embedded store in a temporary directory and
// waits for its indexes.
func openTestDB(t *testing.T) *DB {
	t.Helper()
	return openTestDBWith(t, Options{DataDir: t.TempDir(), Timeout: 10 * time.Second})
}

// openTestDBWith is openTestDB with other options.
func openTestDBWith(t *testing.T, opts Options) *DB {
	t.Helper()
	d, err := Open(context.Background(), opts, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	select {
	case <-d.IndexesReady():
	case <-time.After(30 * time.Second):
		t.Fatal("indexes not created in 30s")
	}
	return d
}

// openExternalTestDB opens the store over FerretDB served on a port, as it
// opens a MongoDB (MONGODB_URI): the paths the embedded store does not take
// (the outbox in chatoutbox, reads without the embedded index) run on it.
func openExternalTestDB(t *testing.T, opts Options) *DB {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := StartEmbedded(t.TempDir(), "127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close) // after the store's Close, registered below
	opts.URI, opts.DataDir = e.URI, ""
	return openTestDBWith(t, opts)
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./store -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// insertMessage is InsertMessage, waiting for the batched write.
func insertMessage(ctx context.Context, d *DB, m chat.Message) (chat.Message, bool, error) {
	o := <-insertAsync(ctx, d, m)
	return o.m, o.created, o.err
}

// reindex rebuilds the embedded index from the documents, as a start after
// an unclean stop does: for tests that write documents directly, as the
// NestJS server (or a restore) would have.
func reindex(t *testing.T, d *DB) {
	t.Helper()
	d.stopIndex()
	ctx := context.Background()
	if _, err := d.db.Collection(IndexStateCollection).DeleteOne(ctx, bson.M{"_id": IndexStateID}); err != nil {
		t.Fatal(err)
	}
	d.index = nil
	if err := d.openIndex(ctx); err != nil {
		t.Fatal(err)
	}
	d.startIndex()
}

// withoutIndex runs f with the embedded index switched off: the store reads
// the documents as it does on MongoDB.
func withoutIndex(t *testing.T, d *DB, f func()) {
	t.Helper()
	x := d.index
	d.index = nil
	defer func() { d.index = x }()
	f()
}

// Package storetest prepares the embedded store's data directory for tests
// with documents of collections this server never writes: users belongs to
// the main backend, so the store has no method to create one.
package storetest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"github.com/fitmate/commserver/store"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Database is the database the server uses when MONGODB_DB is not set.
const Database = "fitmate"

// Insert writes docs into collection of the embedded store kept in dir,
// before the server (or store.Open) uses dir: it runs its own FerretDB over
// the same files and stops it again.
func Insert(dir, collection string, docs ...any) error {
	return with(dir, func(ctx context.Context, db *mongo.Database) error {
		if _, err := db.Collection(collection).InsertMany(ctx, docs); err != nil {
			return fmt.Errorf("storetest: insert into %s: %w", collection, err)
		}
		// Written behind the server's back: its index of the embedded store
		// is rebuilt from the documents at the next start.
		if _, err := db.Collection(store.IndexStateCollection).DeleteOne(ctx, bson.M{"_id": store.IndexStateID}); err != nil {
			return fmt.Errorf("storetest: %w", err)
		}
		return nil
	})
}

// Find returns the documents of collection matching filter, sorted by _id,
// from the embedded store kept in dir, once nothing else uses dir (after
// the store is closed).
func Find(dir, collection string, filter any) ([]bson.M, error) {
	var out []bson.M
	err := with(dir, func(ctx context.Context, db *mongo.Database) error {
		cur, err := db.Collection(collection).Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			return fmt.Errorf("storetest: find in %s: %w", collection, err)
		}
		return cur.All(ctx, &out)
	})
	return out, err
}

// with runs fn against a FerretDB of its own over dir's files.
func with(dir string, fn func(ctx context.Context, db *mongo.Database) error) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return err
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return fmt.Errorf("storetest: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(runCtx) }()
	defer func() { stop(); <-done }()

	client, err := mongo.Connect(options.Client().ApplyURI(f.MongoDBURI()))
	if err != nil {
		return fmt.Errorf("storetest: %w", err)
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	return fn(ctx, client.Database(Database))
}

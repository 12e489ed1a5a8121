package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/fitmate/commserver/store"
)

// run serves the store until ctx is done. The flags default to DATA_DIR and
// DEVSTORE_ADDR (what scripts/cluster.sh sets).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", orDefault(getenv("DATA_DIR"), "./devdata"), "directory of the SQLite files (created if needed; env DATA_DIR)")
	addr := fs.String("addr", orDefault(getenv("DEVSTORE_ADDR"), "127.0.0.1:27017"), "loopback address to listen on, port 0 picks one (env DEVSTORE_ADDR)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e, err := store.StartEmbedded(*dir, *addr, log)
	if err != nil {
		return err
	}
	// Its clients create collections as they go: index their _id as they appear.
	indexed := make(chan struct{})
	go func() { defer close(indexed); e.KeepIndexingIDs(ctx, time.Second) }()
	fmt.Fprintln(stdout, e.URI)
	<-ctx.Done()
	<-indexed
	e.Close()
	return nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

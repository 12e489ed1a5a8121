// Command devstore serves the embedded store (FerretDB over SQLite files,
// as the server runs it when MONGODB_URI is unset) in a process of its own,
// on a loopback port, for tests and for trying things by hand: a store that
// can be frozen (SIGSTOP) or killed apart from the server, or shared by
// several server processes (MONGODB_URI=<its URI>fitmate).
//
//	devstore -dir ./devdata -addr 127.0.0.1:27017   (or DATA_DIR, DEVSTORE_ADDR)
//
// It prints its MongoDB URI as the first line on stdout ("mongodb://…/"),
// then serves until SIGINT or SIGTERM. It is not a production database: use
// MongoDB for that.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "devstore:", err)
		os.Exit(1)
	}
}

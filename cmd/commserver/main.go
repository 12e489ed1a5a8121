// Command commserver is the FitMate communication server: Socket.IO chat and
// live notifications, SMS over Twilio, and REST for the main backend, on one port.
//
// Configuration comes from the environment (see README.md). With no
// MONGODB_URI it runs on an embedded MongoDB-compatible store under DATA_DIR.
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
	if err := run(ctx, os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "commserver:", err)
		os.Exit(1)
	}
}

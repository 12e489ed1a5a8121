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
	"runtime"
	"syscall"
)

func main() {
	atLeastTwoPs(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "commserver:", err)
		os.Exit(1)
	}
}

// atLeastTwoPs gives the Go scheduler two Ps when it would have one (a pod
// with a one-CPU limit, a process pinned to one core), unless GOMAXPROCS
// says otherwise. The WebSocket event loop (nbio) waits for the network in
// epoll_wait outside Go's own network poller: with a single P, the loop's
// thread gives the P up while it waits and must win it back from the
// handlers before it can read again, so connections queue while the CPU
// idles (measured: 3,700 connections/s at 73 % of the core with one P,
// 5,000-5,400 at 90-95 % with two). Two Ps on one core let the loop come
// back at once; the kernel shares the core.
func atLeastTwoPs(getenv func(string) string) {
	if getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
}

package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// The official suites (../shared/conformance), five runs in a row each,
// against this layer: socket.io-protocol 32/32 and engine.io-protocol 24/24.
// The browser-like variants are used: the unmodified harness misses frames
// that arrive in one TCP read (it fails against Node's own server too, see
// the suites' README), and this server coalesces writes, so it would miss
// them every time.
func TestConformanceSuites(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the conformance suites take a minute")
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to run the official conformance suites (Node 20): %v", tool, err)
		}
	}
	shared := sharedDir(t)
	suites := filepath.Join(t.TempDir(), "conformance")
	prep := exec.Command(filepath.Join(shared, "conformance", "harness", "prepare.sh"), suites)
	if out, err := prep.CombinedOutput(); err != nil {
		t.Fatalf("prepare.sh: %v\n%s", err, out)
	}
	unlock := lockPort3000(t)
	defer unlock()

	cases := []struct {
		name, mode, dir string
		tests           int
	}{
		{"socket.io-protocol", "sio", "socket.io-protocol/test-suite-bl", 32},
		{"engine.io-protocol", "eio", "engine.io-protocol/test-suite-bl", 24},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stop := startServer(t, map[string]string{"MODE": c.mode, "PORT": "3000"})
			defer stop()
			for run := 1; run <= 5; run++ {
				res := mocha(t, filepath.Join(suites, c.dir))
				if res.Stats.Tests != c.tests || res.Stats.Passes != c.tests || res.Stats.Failures != 0 {
					for _, f := range res.Failures {
						t.Errorf("run %d: %s: %s", run, f.FullTitle, f.Err.Message)
					}
					t.Fatalf("run %d: %d tests, %d passed, %d failed; want %d passed", run,
						res.Stats.Tests, res.Stats.Passes, res.Stats.Failures, c.tests)
				}
				t.Logf("run %d: %d/%d passed", run, res.Stats.Passes, res.Stats.Tests)
			}
		})
	}
}

// sharedDir is ../shared beside the repository (FITMATE_SHARED overrides it).
func sharedDir(t *testing.T) string {
	if d := os.Getenv("FITMATE_SHARED"); d != "" {
		return d
	}
	d, err := filepath.Abs(filepath.Join("..", "..", "..", "shared"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d, "conformance", "harness", "prepare.sh")); err != nil {
		t.Fatalf("the conformance suites are expected in %s (../shared beside the repository): %v", d, err)
	}
	return d
}

// lockPort3000 takes the machine-wide lock on port 3000, which the suites
// hard-code and other packages' tests (the browser test) use too.
func lockPort3000(t *testing.T) func() {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "fitmate-port-3000.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}
}

func startServer(t *testing.T, env map[string]string) func() {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, ready) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("server: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("server did not start")
	}
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	}
}

type mochaResult struct {
	Stats struct {
		Tests, Passes, Failures int
	}
	Failures []struct {
		FullTitle string
		Err       struct{ Message string }
	}
}

func mocha(t *testing.T, dir string) mochaResult {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "node_modules", ".bin", "mocha"), "--reporter", "json", "test-suite.js")
	cmd.Dir = dir
	out, err := cmd.Output()
	var res mochaResult
	if jerr := json.Unmarshal(out, &res); jerr != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("mocha in %s: %v (%v)\n%s\n%s", dir, jerr, err, out, stderr)
	}
	return res
}

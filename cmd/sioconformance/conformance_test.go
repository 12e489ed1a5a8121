package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The official suites (../shared/conformance), five runs in a row each,
// against this layer: socket.io-protocol 32/32 and engine.io-protocol 24/24
// (of the two tests that race on their own, each may fail once: knownRace).
// The browser-like variants are used: the unmodified harness misses frames
// that arrive in one TCP read (it fails against Node's own server too, see
// the suites' README), and this server coalesces writes, so it would miss
// them every time.
//
// The server runs as its own process, built without the race detector: the
// suites time heartbeats to 200 ms, and a race-instrumented server on a
// machine loaded by make test's other packages fired its timers hundreds of
// milliseconds late. The same code runs under -race in the packages' own
// tests (gateway/socketio, with the real socket.io-client).
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
	bin := filepath.Join(t.TempDir(), "sioconformance")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
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
			stop := startServer(t, bin, "MODE="+c.mode, "PORT=3000")
			defer stop()
			raced := map[string]bool{}
			for run := 1; run <= 5; run++ {
				waitQuiet(t)
				res := mocha(t, filepath.Join(suites, c.dir))
				failed := 0
				for _, f := range res.Failures {
					if r := knownRace(f.FullTitle); r != "" && !raced[r] {
						raced[r] = true // once in five runs, as Node's own server does
						t.Logf("run %d: %s: %s (a race of the suite itself; a second failure fails)", run, f.FullTitle, f.Err.Message)
						continue
					}
					failed++
					t.Errorf("run %d: %s: %s", run, f.FullTitle, f.Err.Message)
				}
				if res.Stats.Tests != c.tests || res.Stats.Passes+len(res.Failures) != c.tests || failed != 0 {
					t.Fatalf("run %d: %d tests, %d passed, %d failed; want %d passed", run,
						res.Stats.Tests, res.Stats.Passes, res.Stats.Failures, c.tests)
				}
				t.Logf("run %d: %d/%d passed", run, res.Stats.Passes, res.Stats.Tests)
			}
		})
	}
}

// knownRace names the race a failed test is known for, or "". The suites'
// README: two tests send a GET and a WebSocket frame (or a POST) at once
// and expect them handled in the order sent; they come on two connections,
// and Node's own echo server fails them now and then too. On the project's
// AMD host "ignore HTTP requests with same sid after upgrade" failed about
// once in eight runs of five, for this server and for the commit before
// the shared-frames change alike. Each may fail once in a test's five runs;
// every other test must pass every run.
func knownRace(title string) string {
	for _, r := range []string{
		"HTTP requests with same sid after upgrade", // "should ignore" / "ignores"
		"should forcefully close the session",
	} {
		if strings.Contains(title, r) {
			return r
		}
	}
	return ""
}

// waitQuiet waits (5 minutes at most) until the machine is at least 40 %
// idle. The suites time heartbeats to 200 ms and other steps to 2 s; under
// make test the other packages' tests load both CPUs, and a starved mocha
// misses those marks against any server (Node's too). They are done within
// a few minutes.
func waitQuiet(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		idle, err := idleFraction(time.Second)
		if err != nil || idle >= 0.4 {
			return
		}
		if time.Now().After(deadline) {
			t.Logf("the machine is still busy (%.0f %% idle); running anyway", idle*100)
			return
		}
	}
}

// idleFraction is the share of CPU time idle over d, from /proc/stat.
func idleFraction(d time.Duration) (float64, error) {
	read := func() (idle, total float64, err error) {
		b, err := os.ReadFile("/proc/stat")
		if err != nil {
			return 0, 0, err
		}
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		for i, v := range f[1:] {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, 0, err
			}
			total += n
			if i == 3 || i == 4 { // idle, iowait
				idle += n
			}
		}
		return idle, total, nil
	}
	i1, t1, err := read()
	if err != nil {
		return 0, err
	}
	time.Sleep(d)
	i2, t2, err := read()
	if err != nil || t2 == t1 {
		return 0, err
	}
	return (i2 - i1) / (t2 - t1), nil
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

// startServer runs the conformance server and waits until it accepts connections.
func startServer(t *testing.T, bin string, env ...string) func() {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:3000", time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("the server exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("the server did not start listening")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Error("the server did not stop on SIGTERM")
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

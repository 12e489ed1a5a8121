package test

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// builds caches the binaries buildOnce made, by package and tags.
var builds sync.Map // key -> *builtBinary

type builtBinary struct {
	once sync.Once
	path string
	err  error
}

// buildOnce builds pkg (relative to this directory, such as ../cmd/devstore)
// with the given build tags into TestMain's directory, once per test run, and
// returns the binary's path. The server's builds get -race when the tests run
// with it, as TestMain's does.
func buildOnce(t testing.TB, pkg string, tags ...string) string {
	t.Helper()
	key := pkg + " " + strings.Join(tags, ",")
	v, _ := builds.LoadOrStore(key, &builtBinary{})
	b := v.(*builtBinary)
	b.once.Do(func() {
		name := filepath.Base(pkg)
		if len(tags) > 0 {
			name += "-" + strings.Join(tags, "-")
		}
		b.path = filepath.Join(binDir, name)
		args := []string{"build", "-o", b.path}
		if len(tags) > 0 {
			args = append(args, "-tags", strings.Join(tags, ","))
		}
		if raceEnabled && strings.HasSuffix(pkg, "commserver") {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, pkg)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.err = &buildError{pkg: pkg, out: string(out), err: err}
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

type buildError struct {
	pkg, out string
	err      error
}

func (e *buildError) Error() string { return "building " + e.pkg + ": " + e.err.Error() + "\n" + e.out }

// devStore is cmd/devstore running in its own process: the embedded store
// the server uses when MONGODB_URI is unset, but apart from the server, so a
// test can freeze it (SIGSTOP), or point several servers at it.
type devStore struct {
	t      testing.TB
	URI    string // mongodb://127.0.0.1:port/ (append the database name for MONGODB_URI)
	cmd    *exec.Cmd
	exited chan error
	frozen bool
}

// startDevStore starts a devstore on a free loopback port over a fresh
// directory and waits until it answers; it is stopped at cleanup.
func startDevStore(t testing.TB) *devStore {
	t.Helper()
	bin := buildOnce(t, "../cmd/devstore")
	cmd := exec.Command(bin, "-dir", t.TempDir(), "-addr", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &devStore{t: t, cmd: cmd, exited: make(chan error, 1)}
	uri := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			uri <- strings.TrimSpace(sc.Text())
		}
		for sc.Scan() {
		}
	}()
	go func() { d.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		d.Thaw()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-d.exited
		}
		if t.Failed() && logs.String() != "" {
			t.Logf("devstore log:\n%s", tail(logs.String(), 50))
		}
	})
	select {
	case d.URI = <-uri:
	case err := <-d.exited:
		t.Fatalf("devstore exited at start: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatal("devstore did not start in 30s")
	}
	eventually(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return mongoDB(t, d.URI, "fitmate").Client().Ping(ctx, nil)
	})
	return d
}

// Freeze stops the store process (SIGSTOP): connections stay open, nothing answers.
func (d *devStore) Freeze() {
	d.t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		d.t.Fatal(err)
	}
	d.frozen = true
}

// Thaw lets a frozen store go on (SIGCONT): what was sent to it meanwhile is
// handled now, after its senders' deadlines.
func (d *devStore) Thaw() {
	if d.frozen {
		_ = d.cmd.Process.Signal(syscall.SIGCONT)
		d.frozen = false
	}
}

// countDocs counts the documents of a collection matching filter.
func countDocs(t testing.TB, db *mongo.Database, col string, filter bson.M) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := db.Collection(col).CountDocuments(ctx, filter)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

package test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The real Nginx with deploy/nginx.conf in front of two real pods: the
// socket.io-client connects over polling, upgrades to WebSocket through it,
// and REST and /readyz pass. Only the addresses are changed: the upstream
// servers become the pods' ports, the listener a free loopback port, and
// the pid and temp files go to a scratch directory.
func TestNginxInFront(t *testing.T) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr == nil {
			bin = "/usr/sbin/nginx"
		} else if os.Getenv("CI") != "" {
			t.Fatal("nginx is not installed: .ci/run installs Debian's nginx")
		} else {
			t.Skip("nginx is not installed (apt-get install nginx); CI runs this test")
		}
	}
	pods, _, _ := clusterPods(t, 2)
	raw, err := os.ReadFile("../deploy/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	port := freePort(t)
	i := 0
	conf := regexp.MustCompile(`(?m)^(\s*server\s+)[^\s;{]+`).ReplaceAllStringFunc(string(raw), func(m string) string {
		if i >= len(pods) {
			t.Fatalf("nginx.conf lists more upstream servers than the %d pods", len(pods))
		}
		prefix := regexp.MustCompile(`^\s*server\s+`).FindString(m)
		i++
		return prefix + strings.TrimPrefix(pods[i-1].URL, "http://")
	})
	if i != len(pods) {
		t.Fatalf("nginx.conf lists %d upstream servers, want %d", i, len(pods))
	}
	conf = strings.Replace(conf, "listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", port), 1)
	var temps strings.Builder
	for _, kind := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&temps, "    %s_temp_path %s;\n", kind, filepath.Join(dir, kind))
	}
	conf = strings.Replace(conf, "http {\n", "http {\n"+temps.String(), 1)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // workers may run as nobody
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", path, "-g", "daemon off; pid "+filepath.Join(dir, "nginx.pid")+";")
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("nginx:\n%s", tail(logs.String(), 50))
		}
	})
	front := fmt.Sprintf("http://127.0.0.1:%d", port)
	eventually(t, 10*time.Second, func() error {
		select {
		case err := <-exited:
			t.Fatalf("nginx exited: %v\n%s", err, logs.String())
		default:
		}
		resp, err := http.Get(front + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("/readyz through nginx: %d", resp.StatusCode)
		}
		return nil
	})

	j := newJS(t, &server{URL: front})
	j.connect("upgraded", token(alice))
	// The client connects over polling and upgrades right after (the
	// CONNECT answer may come before or after the upgrade).
	eventually(t, 10*time.Second, func() error {
		if tr := j.state("upgraded")["transport"]; tr != "websocket" {
			return fmt.Errorf("through nginx the client stayed on %v: the upgrade did not pass", tr)
		}
		return nil
	})
	j.connect("polling", token(bob), map[string]any{"transports": []string{"polling"}})
	for _, name := range []string{"upgraded", "polling"} {
		for range 3 {
			if ack := j.emitAck(name, "noSuchEvent", map[string]any{}); ack["ok"] != false {
				t.Fatalf("%s: ack %v", name, ack)
			}
		}
	}
	status, body := (&server{URL: front}).api(t, "GET", "/notifications/unread-count", bearerOf(carol), nil)
	if status != 200 || body["unreadCount"] == nil {
		t.Fatalf("REST through nginx: %d %v", status, body)
	}
}

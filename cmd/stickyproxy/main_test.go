package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRunProxies(t *testing.T) {
	pod := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "pod") }))
	defer pod.Close()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		done <- serve(ctx, []string{"stickyproxy", "-listen", "127.0.0.1:0", "-affinity", "cookie", pod.URL}, &out, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(5 * time.Second):
		t.Fatal("not listening in 5s")
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "pod" || !strings.HasPrefix(resp.Header.Get("Set-Cookie"), "fitmate_pod=0") {
		t.Fatalf("%q %v", b, resp.Header)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRunRefusesBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"stickyproxy"},
		{"stickyproxy", "-affinity", "sticky", "http://127.0.0.1:1"},
		{"stickyproxy", "127.0.0.1:3001"},
	} {
		if err := run(context.Background(), args, nil, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

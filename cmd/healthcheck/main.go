// Command healthcheck asks the server in its own container for a health
// route and exits 0 when it answers 200: the image's HEALTHCHECK and the
// compose file's, since the image has no shell, curl or wget.
//
//	healthcheck [/healthz|/readyz]
//
// It asks http://127.0.0.1:$PORT (PORT as the server reads it, default 3000).
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, _ io.Writer) error {
	path := "/healthz"
	if len(args) > 2 {
		return fmt.Errorf("usage: healthcheck [path]")
	}
	if len(args) == 2 {
		path = args[1]
	}
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("path %q must start with /", path)
	}
	port := strings.TrimSpace(getenv("PORT"))
	if port == "" {
		port = "3000"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+port+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s answered %d: %s", path, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	engine "github.com/zishang520/socket.io/clients/engine/v3/transports"
)

// BenchmarkNotificationCreate measures notifications created per second
// through REST (POST /notifications with the service key) while their user
// is connected, and the latency from sending the request to the user's
// socket receiving newNotification. The socket is zishang520's Go client
// over WebSocket, in this process, so receive times are exact; the
// end-to-end tests cover the same path with the npm client.
//
//	go test ./test/ -run '^$' -bench NotificationCreate -benchtime 2000x
//
// Sub-benchmarks: one request in flight at a time (latency without
// queueing), and 8 in flight (throughput).
func BenchmarkNotificationCreate(b *testing.B) {
	for _, inFlight := range []int{1, 8} {
		b.Run(fmt.Sprintf("in-flight=%d", inFlight), func(b *testing.B) {
			benchCreate(b, inFlight)
		})
	}
}

func benchCreate(b *testing.B, inFlight int) {
	srv := startServer(b, "LOG_LEVEL=warn")
	var (
		mu       sync.Mutex
		sent     = map[string]time.Time{}
		received = map[string]time.Time{}
		got      atomic.Int64
	)
	client := newGoClient(b, srv, token(alice), engine.WebSocket)
	connected := make(chan struct{}, 1)
	_ = client.On("connect", func(...any) {
		select {
		case connected <- struct{}{}:
		default:
		}
	})
	_ = client.On("newNotification", func(args ...any) {
		at := time.Now()
		n, _ := args[0].(map[string]any)
		title, _ := n["title"].(string)
		mu.Lock()
		received[title] = at
		mu.Unlock()
		got.Add(1)
	})
	client.Connect()
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		b.Fatal("the Go client did not connect")
	}

	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: inFlight}}
	create := func(i int) error {
		title := fmt.Sprint("bench ", i)
		body, _ := json.Marshal(map[string]any{"userId": alice, "title": title, "message": "m", "type": "system"})
		req, _ := http.NewRequest("POST", srv.URL+"/notifications", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", testAPIKey)
		mu.Lock()
		sent[title] = time.Now()
		mu.Unlock()
		resp, err := httpc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("POST /notifications: %d", resp.StatusCode)
		}
		return nil
	}

	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, inFlight)
	for range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > b.N {
					return
				}
				if err := create(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for got.Load() < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := got.Load(); n != int64(b.N) {
		b.Fatalf("the socket got %d newNotification for %d created", n, b.N)
	}
	mu.Lock()
	lat := make([]time.Duration, 0, b.N)
	for title, at := range received {
		lat = append(lat, at.Sub(sent[title]))
	}
	mu.Unlock()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "creates/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}

package gateway

import (
	"net/http"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/gateway/socketio"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the server's Prometheus metrics, on a registry of its own (so
// tests can run several servers in one process). GET /metrics serves them.
type Metrics struct {
	reg           *prometheus.Registry
	handshakes    *prometheus.CounterVec
	events        *prometheus.CounterVec
	eventDuration *prometheus.HistogramVec
	requests      *prometheus.CounterVec
	reqDuration   *prometheus.HistogramVec
}

// NewMetrics registers the metrics, with the Go runtime's and the process's.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "commserver_socket_handshakes_total", Help: "Socket.IO handshakes by result (ok or the refusal code)."}, []string{"result"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "commserver_socket_events_total", Help: "Client events handled, by event and result code."}, []string{"event", "code"}),
		eventDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "commserver_socket_event_seconds", Help: "Time to handle a client event.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"event"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "commserver_http_requests_total", Help: "REST requests by route and status."}, []string{"route", "status"}),
		reqDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "commserver_http_request_seconds", Help: "Time to answer a REST request.",
			Buckets: prometheus.DefBuckets}, []string{"route"}),
	}
	reg.MustRegister(m.handshakes, m.events, m.eventDuration, m.requests, m.reqDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observeHub adds the Socket.IO layer's counters, read from its Stats when
// scraped (derived, so they cannot drift from what the layer holds).
func (m *Metrics) observeHub(h *Hub) {
	gauge := func(name, help string, f func(st socketio.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(h.Stats()) })
	}
	counter := func(name, help string, f func(st socketio.Stats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(h.Stats()) })
	}
	m.reg.MustRegister(
		gauge("commserver_sockets_connected", "Socket.IO sockets connected to this instance.",
			func(st socketio.Stats) float64 { return float64(st.Sockets) }),
		counter("commserver_socket_overflows_total", "Connections closed because their client sent faster than its handlers ran.",
			func(st socketio.Stats) float64 { return float64(st.Overflows) }),
		counter("commserver_socket_violations_total", "Connections closed for a Socket.IO protocol violation.",
			func(st socketio.Stats) float64 { return float64(st.Violations) }),
		counter("commserver_socket_handler_panics_total", "Socket.IO handler panics recovered.",
			func(st socketio.Stats) float64 { return float64(st.Panics) }),
		counter("commserver_socket_deliveries_total", "Packets delivered to local sockets by broadcasts.",
			func(st socketio.Stats) float64 { return float64(st.Deliveries) }),
		gauge("commserver_socket_workers", "Goroutines running Socket.IO handlers now.",
			func(st socketio.Stats) float64 { return float64(st.Workers) }),
		counter("commserver_socket_cut_off_total", "Connections cut off because their client did not read what it was sent.",
			func(st socketio.Stats) float64 { return float64(st.Engine.CutOff) }),
		counter("commserver_socket_oversize_total", "Messages over the payload limit.",
			func(st socketio.Stats) float64 { return float64(st.Engine.Oversize) }),
		counter("commserver_socket_upgrades_total", "Long-polling sessions upgraded to WebSocket.",
			func(st socketio.Stats) float64 { return float64(st.Engine.Upgrades) }),
	)
}

// Registerer lets other parts add their metrics.
func (m *Metrics) Registerer() prometheus.Registerer { return m.reg }

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

func (m *Metrics) handshake(result commserver.Code) {
	m.handshakes.WithLabelValues(string(result)).Inc()
}

func (m *Metrics) event(name string, err error, d time.Duration) {
	code := "ok"
	if err != nil {
		code = string(commserver.ErrorCode(err))
	}
	m.events.WithLabelValues(name, code).Inc()
	m.eventDuration.WithLabelValues(name).Observe(d.Seconds())
}

func (m *Metrics) request(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, http.StatusText(status)).Inc()
	m.reqDuration.WithLabelValues(route).Observe(d.Seconds())
}

package scheduler

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the jobs' Prometheus metrics.
type metrics struct {
	runs        *prometheus.CounterVec   // job, trigger, result
	duration    *prometheus.HistogramVec // job, result
	items       *prometheus.CounterVec   // job, outcome
	lockLost    *prometheus.CounterVec   // job
	lastSuccess *prometheus.GaugeVec     // job
	running     *prometheus.GaugeVec     // job
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "commserver_job_runs_total",
			Help: "Scheduled job attempts by trigger (schedule, manual, catch-up) and result (ok, failed, panic, interrupted, skipped_locked, skipped_unavailable, skipped_running, skipped_done)."},
			[]string{"job", "trigger", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "commserver_job_run_seconds", Help: "Time a job's attempt took, by result.",
			Buckets: []float64{.01, .05, .1, .5, 1, 5, 15, 60, 300, 900, 3600}}, []string{"job", "result"}),
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "commserver_job_items_total",
			Help: "What jobs did per recipient or document: sent, skipped (served before), failed, and job-specific outcomes."},
			[]string{"job", "outcome"}),
		lockLost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "commserver_job_lock_lost_total",
			Help: "Runs whose cluster lock could not be extended (they went on: the ledger keeps them from sending twice)."},
			[]string{"job"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "commserver_job_last_success_timestamp_seconds", Help: "When a job's last run on this instance finished ok."},
			[]string{"job"}),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "commserver_job_running", Help: "1 while a job runs on this instance."}, []string{"job"}),
	}
	m.runs = register(reg, m.runs)
	m.duration = register(reg, m.duration)
	m.items = register(reg, m.items)
	m.lockLost = register(reg, m.lockLost)
	m.lastSuccess = register(reg, m.lastSuccess)
	m.running = register(reg, m.running)
	return m
}

// register registers c, or returns the collector already registered under
// its name (two schedulers on one registry share their metrics).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // a programming error: two different metrics under one name
	}
	return c
}

package dispatch

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the engine's Prometheus series, all named herald_*.
type metrics struct {
	attempts        *prometheus.CounterVec // by outcome: delivered, retrying, failed
	attemptDuration prometheus.Histogram
	inFlight        prometheus.Gauge
	queued          prometheus.Gauge
	probing         prometheus.Gauge
	paced           prometheus.Gauge
	rateWaits       prometheus.Counter
	claimBatch      prometheus.Histogram
	queueLag        prometheus.Histogram
	ingestBatch     prometheus.Histogram
	ingestCommit    prometheus.Histogram
	flushErrors     prometheus.Counter
	resultsLost     prometheus.Counter
	orphansReleased prometheus.Counter
	queueDropped    prometheus.Counter
	handedOff       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_delivery_attempts_total",
			Help: "Delivery attempts made, by what became of the delivery: delivered, retrying or failed.",
		}, []string{"outcome"}),
		attemptDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "herald_delivery_attempt_duration_seconds",
			Help:    "Time from sending a webhook request to the end of the receiver's answer.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_deliveries_in_flight",
			Help: "Webhook requests this node is sending right now.",
		}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_deliveries_queued",
			Help: "Deliveries this node has claimed and not started: its local queues, which keep the senders busy between claims.",
		}),
		probing: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_webhooks_probing",
			Help: "Webhooks whose circuit breaker is open on this node: after consecutive failed attempts they get one request at a time until one succeeds.",
		}),
		paced: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_webhooks_paced",
			Help: "Webhooks whose adaptive pace allows fewer requests in flight on this node than their maximum, after timeouts, 429 or 503 answers or rising latency.",
		}),
		rateWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_rate_limit_waits_total",
			Help: "Times a delivery of a webhook with rateLimitPerSecond was ready to start on this node and waited for the webhook's next request slot.",
		}),
		claimBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "herald_claim_batch_size",
			Help:    "Deliveries claimed per claim that returned any.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
		}),
		queueLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "herald_queue_lag_seconds",
			Help:    "How long new deliveries waited to be claimed: claim (or handoff) time minus creation, for first attempts.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10, 30, 60, 300},
		}),
		handedOff: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_deliveries_handed_off_total",
			Help: "New deliveries claimed by this node in the transaction that stored their event, and sent without a claim.",
		}),
		ingestBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "herald_ingest_batch_size",
			Help:    "Events per group commit: many API requests stored in one transaction.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000},
		}),
		ingestCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "herald_ingest_commit_duration_seconds",
			Help:    "Time of one write transaction that stored events: the group commit of events, their deliveries and the attempt results waiting with them.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		flushErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_result_flush_errors_total",
			Help: "Failed writes of attempt results; they are retried while their lease holds.",
		}),
		resultsLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_results_lost_total",
			Help: "Attempt results never written (lease ran out or shutdown during a database outage); those deliveries are sent again.",
		}),
		orphansReleased: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_orphaned_claims_released_total",
			Help: "Deliveries claimed under this node that it did not hold, released to be claimed again: the claim's answer was lost with the connection, or a queued delivery was dropped.",
		}),
		queueDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_queue_dropped_total",
			Help: "Queued deliveries not started because they waited too long or too little of their lease was left; they are released and claimed again afresh.",
		}),
	}
	for _, c := range []prometheus.Collector{m.attempts, m.attemptDuration, m.inFlight, m.claimBatch,
		m.queueLag, m.ingestBatch, m.ingestCommit, m.flushErrors, m.resultsLost, m.orphansReleased, m.queued, m.queueDropped, m.handedOff, m.probing, m.paced, m.rateWaits} {
		if err := reg.Register(c); err != nil {
			var dup prometheus.AlreadyRegisteredError
			if errors.As(err, &dup) {
				return nil, errors.New("dispatch: engine metrics are already registered: give each engine its own Config.Registerer")
			}
			return nil, err
		}
	}
	// Every outcome shows from the start, so rates work before the first failure.
	for _, o := range []string{outcomeDelivered, outcomeRetrying, outcomeFailed} {
		m.attempts.WithLabelValues(o)
	}
	return m, nil
}

// Outcome label values of herald_delivery_attempts_total.
const (
	outcomeDelivered = "delivered"
	outcomeRetrying  = "retrying"
	outcomeFailed    = "failed"
)

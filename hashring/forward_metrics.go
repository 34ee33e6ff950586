package hashring

import (
	"github.com/prometheus/client_golang/prometheus"
	"sync"
)

// forwardMetrics are the forwarder's self-metrics. The queue to each peer is a downstream
// named peer/<member>, with the cardinal_downstream_* metrics of every downstream.
type forwardMetrics struct {
	shardsOwned      prometheus.Gauge
	ringInfo         *prometheus.GaugeVec
	ringChanges      prometheus.Counter
	forwardedSamples *prometheus.CounterVec
	received         *prometheus.CounterVec
	receivedBytes    *prometheus.CounterVec
	disagreements    prometheus.Counter
	handoffs         *prometheus.CounterVec
	handoffBytes     *prometheus.CounterVec
	handoffDuration  prometheus.Histogram
	handoffWait      *prometheus.HistogramVec
	handoffsPending  prometheus.Gauge
	handoffsReceived *prometheus.CounterVec
	handoffRingSyncs prometheus.Counter
	forwardSent      *prometheus.CounterVec
	forwardBytes     *prometheus.CounterVec
	forwardFailed    *prometheus.CounterVec
	forwardDropped   *prometheus.CounterVec
	forwardRerouted  *prometheus.CounterVec
	forwardRetries   *prometheus.CounterVec
	queueBytes       *prometheus.GaugeVec
	queueMaxBytes    prometheus.Gauge
}

func newForwardMetrics(reg prometheus.Registerer) *forwardMetrics {
	m := &forwardMetrics{
		shardsOwned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cardinal_cluster_shards_owned", Help: "Logical shards (of 262144) this member owns in the ring in force.",
		}),
		ringInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cardinal_cluster_ring_info", Help: "The ring this member routes by: 1, with its version; members that disagree show different versions (one that left, or waits for its peers to add it, routes by their ring without itself).",
		}, []string{"version"}),
		ringChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cardinal_cluster_ring_changes_total", Help: "Times the ring changed (a member joined or left).",
		}),
		forwardedSamples: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cardinal_cluster_forwarded_samples_total", Help: "Samples queued for the peer that owns their output.",
		}, []string{"peer"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cardinal_cluster_received_requests_total", Help: "Forwarded requests received from each peer.",
		}, []string{"peer"}),
		receivedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cardinal_cluster_received_bytes_total", Help: "Bytes of forwarded request bodies (snappy-compressed) received from each peer.",
		}, []string{"peer"}),
		handoffs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cardinal_cluster_handoffs_total", Help: "Handoffs of output state sent to the peer that gained it, by result (ok, failed).",
		}, []string{"peer", "result"}),
		handoffBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cardinal_cluster_handoff_bytes_total", Help: "Bytes of output state handed off to each peer.",
		}, []string{"peer"}),
		handoffDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cardinal_cluster_handoff_duration_seconds", Help: "Time from taking state out to its owner accepting it, per handoff.",
			Buckets: []float64{.005, .01, .05, .1, .5, 1, 5, 10, 30, 60},
		}),
		handoffWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cardinal_cluster_handoff_wait_seconds",
			Help:    "Time from a ring change (or a start) until every peer had handed over what this member gained (result handed_over), or until the handoff timeout ended the wait (timeout): how long gained outputs were held.",
			Buckets: []float64{.5, 1, 2, 5, 10, 30, 60, 120, 300},
		}, []string{"result"}),
		handoffsPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cardinal_cluster_handoffs_pending", Help: "Handoffs taken out of the aggregator and not yet delivered to their owner nor given up (kept in checkpoints).",
		}),
		handoffsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cardinal_cluster_handoffs_received_total", Help: "Handoffs received from each peer, by result: ok, refused, or duplicate (a retry of one merged already, answered without merging it again).",
		}, []string{"peer", "result"}),
		handoffRingSyncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cardinal_cluster_handoff_ring_syncs_total", Help: "Handoffs received from a peer routing by another ring, which made this member run a membership round before merging them.",
		}),
		forwardSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cardinal_cluster_forward_sent_samples_total", Help: "Forwarded samples the peer acknowledged.",
		}, []string{"peer"}),
		forwardBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cardinal_cluster_forward_sent_bytes_total", Help: "Bytes (snappy-compressed bodies) of forwarded requests the peer acknowledged.",
		}, []string{"peer"}),
		forwardFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cardinal_cluster_forward_failed_samples_total", Help: "Forwarded samples the peer refused for good (4xx other than 429).",
		}, []string{"peer"}),
		forwardDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cardinal_cluster_forward_dropped_samples_total", Help: "Forwarded samples given up: at shutdown, after the shutdown timeout, or queued bytes found not to be series (a bug; logged).",
		}, []string{"peer"}),
		forwardRerouted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cardinal_cluster_forward_rerouted_samples_total", Help: "Samples a replaced ring's queue to the peer still held after the drain timeout, routed again by the ring in force.",
		}, []string{"peer"}),
		forwardRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cardinal_cluster_forward_retries_total", Help: "Forwarded requests retried after a 5xx, 408, 429 or network error.",
		}, []string{"peer"}),
		queueBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cardinal_cluster_forward_queue_bytes", Help: "Bytes queued or in flight to the peer, in all its queues (a replaced ring's drains beside the new one's): encoded series, and a backlog past 4 MiB packed (snappy-compressed, as it is sent); a queue at cluster.forward.queue.max_bytes makes the receiver answer 503.",
		}, []string{"peer"}),
		queueMaxBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cardinal_cluster_forward_queue_max_bytes", Help: "cluster.forward.queue.max_bytes: the bytes the queues to one peer may hold before the receiver answers 503.",
		}),
		disagreements: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cardinal_cluster_ring_disagreements_total",
			Help: "Forwarded requests routed by a ring other than the one in force here: aggregated by the sender's ring, as it meant.",
		}),
	}
	// Both results from the start, with no observation, so that the series exist.
	m.handoffWait.WithLabelValues("handed_over")
	m.handoffWait.WithLabelValues("timeout")
	if reg != nil {
		reg.MustRegister(m.shardsOwned, m.ringInfo, m.ringChanges, m.forwardedSamples, m.received, m.receivedBytes, m.disagreements,
			m.handoffs, m.handoffBytes, m.handoffDuration, m.handoffWait, m.handoffsPending, m.handoffsReceived, m.handoffRingSyncs,
			m.forwardSent, m.forwardBytes, m.forwardFailed, m.forwardDropped, m.forwardRerouted, m.forwardRetries, m.queueBytes, m.queueMaxBytes)
	}
	return m
}

// setRing publishes the ring in force (membership exports its size and version).
// touchPeer creates every per-peer series of a member at 0, so that the first event shows
// in increase() and alerts have a series from the start.
func (m *forwardMetrics) touchPeer(name string) {
	for _, v := range []*prometheus.CounterVec{m.forwardedSamples, m.forwardSent, m.forwardBytes, m.forwardFailed,
		m.forwardDropped, m.forwardRerouted, m.forwardRetries, m.handoffBytes, m.received, m.receivedBytes} {
		v.WithLabelValues(name)
	}
	for _, result := range []string{"ok", "failed"} {
		m.handoffs.WithLabelValues(name, result)
	}
	for _, result := range []string{"ok", "refused", "duplicate"} {
		m.handoffsReceived.WithLabelValues(name, result)
	}
	m.queueBytes.WithLabelValues(name)
}

func (m *forwardMetrics) setRing(r *Ring, self string) {
	m.shardsOwned.Set(float64(r.ShardsOwned(self)))
	m.ringInfo.Reset()
	m.ringInfo.WithLabelValues(r.VersionString()).Set(1)
}

// maxPeerLabels bounds the peer label values of the metrics counted by the name a request
// says its sender has (received requests and bytes, handoffs received).
const maxPeerLabels = 4096

// peerLabels gives the peer label of a sender's name: the name itself for the first
// maxPeerLabels names seen, "other" after that, so that requests naming ever new senders
// cannot grow the metrics without bound. The zero value is ready for use.
type peerLabels struct {
	mu   sync.Mutex
	seen map[string]struct{}
}

// label returns the peer label of the sender named name.
func (p *peerLabels) label(name string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.seen[name]; ok {
		return name
	}
	if len(p.seen) >= maxPeerLabels {
		return "other"
	}
	if p.seen == nil {
		p.seen = map[string]struct{}{}
	}
	p.seen[name] = struct{}{}
	return name
}

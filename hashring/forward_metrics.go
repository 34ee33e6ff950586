package hashring

import (
	"github.com/prometheus/client_golang/prometheus"
)

// forwardMetrics are the forwarder's self-metrics. The queue to each peer is a downstream
// named peer/<member>, with the cardinal_downstream_* metrics of every downstream.
type forwardMetrics struct {
	ringInfo         *prometheus.GaugeVec
	members          prometheus.Gauge
	shardsOwned      prometheus.Gauge
	ringChanges      prometheus.Counter
	forwardedSamples *prometheus.CounterVec
	received         *prometheus.CounterVec
	receivedBytes    *prometheus.CounterVec
	disagreements    prometheus.Counter
	handoffs         *prometheus.CounterVec
	handoffBytes     *prometheus.CounterVec
	handoffDuration  prometheus.Histogram
	handoffsReceived *prometheus.CounterVec
}

func newForwardMetrics(reg prometheus.Registerer) *forwardMetrics {
	m := &forwardMetrics{
		ringInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cardinal_cluster_ring_info",
			Help: "1 for the ring in force, labelled with its version (a hash of the member names): members that agree show the same version.",
		}, []string{"version"}),
		members: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cardinal_cluster_members", Help: "Members of the ring in force, this one included.",
		}),
		shardsOwned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cardinal_cluster_shards_owned", Help: "Logical shards (of 65536) this member owns in the ring in force.",
		}),
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
		handoffsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cardinal_cluster_handoffs_received_total", Help: "Handoffs received from each peer, by result (ok, refused).",
		}, []string{"peer", "result"}),
		disagreements: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cardinal_cluster_ring_disagreements_total",
			Help: "Forwarded requests routed by a ring other than the one in force here: aggregated by the sender's ring, as it meant.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.ringInfo, m.members, m.shardsOwned, m.ringChanges, m.forwardedSamples, m.received, m.receivedBytes, m.disagreements,
			m.handoffs, m.handoffBytes, m.handoffDuration, m.handoffsReceived)
	}
	return m
}

// setRing publishes the ring in force.
func (m *forwardMetrics) setRing(r *Ring, self string) {
	m.ringInfo.Reset()
	m.ringInfo.WithLabelValues(r.VersionString()).Set(1)
	m.members.Set(float64(r.Len()))
	m.shardsOwned.Set(float64(r.ShardsOwned(self)))
}

package downstream

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/remotewrite"
)

// OutputMetadata gives the metadata (type, unit, help) of the series a sink is sent: the
// aggregator's outputs, whose metadata it derives from what agents declare for the inputs.
type OutputMetadata interface {
	// MetadataOf returns the metadata of the series with metric name name.
	MetadataOf(name string) (prompb.MetricMetadata, bool)
	// Metadata returns the metadata of every family, sorted by family name; the caller
	// does not modify it.
	Metadata() []prompb.MetricMetadata
}

// SendMetadata makes the sink send the metadata src gives, unless its metadata_config says
// not to: Remote Write 2.0 inline with each series, 1.0 in metadata-only requests every
// send_interval (as Prometheus does). Call it before Start.
func (r *RemoteWrite) SendMetadata(src OutputMetadata) {
	if r.s.metadataCfg.Send {
		r.s.metadata = src
	}
}

// metadataMetrics count what a sender did with metadata.
type metadataMetrics struct {
	sent   prometheus.Counter
	failed prometheus.Counter
}

func newMetadataMetrics(reg prometheus.Registerer, downstream string) metadataMetrics {
	counter := func(name, help string) prometheus.Counter {
		return register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"downstream"})).WithLabelValues(downstream)
	}
	return metadataMetrics{
		sent: counter("cardinal_downstream_metadata_sent_total",
			"Metric families whose metadata the downstream accepted in Remote Write 1.0 metadata requests (2.0 sends it inline with the samples)."),
		failed: counter("cardinal_downstream_metadata_failed_total",
			"Metric families whose metadata the downstream refused, or that failed until the next send interval; sent again then."),
	}
}

// runMetadata sends every output family's metadata each send interval, for a Remote Write
// 1.0 receiver, until the sender stops.
func (s *sender) runMetadata() {
	defer s.wg.Done()
	var enc remotewrite.Encoder
	tick := time.NewTicker(time.Duration(s.metadataCfg.SendInterval))
	defer tick.Stop()
	for {
		select {
		case <-s.drain:
			return
		case <-s.abortCtx.Done():
			return
		case <-tick.C:
		}
		all := s.metadata.Metadata()
		deadline := time.Now().Add(time.Duration(s.metadataCfg.SendInterval))
		for len(all) > 0 {
			n := min(len(all), s.metadataCfg.MaxSamplesPerSend)
			if !s.sendMetadata(&enc, all[:n], deadline) {
				break
			}
			all = all[n:]
		}
	}
}

// sendMetadata sends one metadata request, retrying what may succeed later until deadline
// (the next interval sends everything again), and reports whether to go on with the rest.
func (s *sender) sendMetadata(enc *remotewrite.Encoder, md []prompb.MetricMetadata, deadline time.Time) bool {
	body, err := enc.EncodeMetadata(md)
	if err != nil {
		s.metadataMetrics.failed.Add(float64(len(md)))
		s.logLimiter.log(s.logger, slog.LevelError, "metadata request cannot be encoded", "families", len(md), "err", err)
		return true
	}
	for attempt := 0; ; attempt++ {
		res := s.post(body)
		if res.bodyBusy {
			enc.LetGo()
		}
		switch res.outcome {
		case sendOK:
			s.metadataMetrics.sent.Add(float64(len(md)))
			return true
		case sendRefused:
			s.metadataMetrics.failed.Add(float64(len(md)))
			s.logLimiter.log(s.logger, slog.LevelWarn, "downstream refused metadata", "status", res.status, "families", len(md), "response", res.detail)
			return true
		case sendAborted:
			return false
		}
		wait := s.backoff.Delay(attempt, res.retryAfter)
		if time.Now().Add(wait).After(deadline) || !sleepCtx(s.abortCtx, wait) {
			s.metadataMetrics.failed.Add(float64(len(md)))
			s.logLimiter.log(s.logger, slog.LevelWarn, "sending metadata to downstream failed; trying again next interval",
				"status", res.status, "err", res.detail, "families", len(md))
			return false
		}
	}
}

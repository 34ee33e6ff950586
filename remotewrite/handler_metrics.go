package remotewrite

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// receiverMetrics are the Handler's self-metrics.
type receiverMetrics struct {
	requests         *prometheus.CounterVec
	samples          prometheus.Counter
	rejectedSeries   *prometheus.CounterVec
	rejectedRequests *prometheus.CounterVec
	requestDuration  prometheus.Histogram
}

// Reasons in cardinal_receiver_rejected_requests_total: why a whole request was refused.
const (
	reasonMethod        = "method_not_allowed"     // 405
	reasonMediaType     = "unsupported_media_type" // 415: encoding, content type, RW 2.0
	reasonTooLarge      = "too_large"              // 413: body or decoded body over max_request_bytes
	reasonTooManySeries = "too_many_series"        // 413: over max_series_per_request
	reasonReadTimeout   = "read_timeout"           // 408: body not received within read_timeout
	reasonReadError     = "read_error"             // 400: connection failed while reading
	reasonMalformed     = "malformed"              // 400: not snappy, not a WriteRequest
	reasonMemory        = "memory_limit"           // 503: live heap over the memory limit
	reasonUnavailable   = "unavailable"            // 503: a downstream queue is full, or shutting down
	reasonAppendRefused = "refused"                // 400: the appender refused the data for good
	reasonInternal      = "internal"               // 500
)

func newReceiverMetrics(reg prometheus.Registerer) *receiverMetrics {
	m := &receiverMetrics{
		requests: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cardinal_receiver_requests_total",
			Help: "Remote write requests received, by HTTP status code of the answer.",
		}, []string{"code"})),
		samples: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cardinal_receiver_samples_total",
			Help: "Samples (floats and native histograms) handed to the appender and accepted by it.",
		})),
		rejectedSeries: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cardinal_receiver_rejected_series_total",
			Help: "Series removed from requests because they are invalid, by reason.",
		}, []string{"reason"})),
		rejectedRequests: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cardinal_receiver_rejected_requests_total",
			Help: "Remote write requests refused as a whole, by reason.",
		}, []string{"reason"})),
		requestDuration: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:                            "cardinal_receiver_request_duration_seconds",
			Help:                            "Time to handle a remote write request, from headers read to answer.",
			Buckets:                         []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  100,
			NativeHistogramMinResetDuration: time.Hour,
		})),
	}
	return m.initReasons()
}

// initReasons exports every reason at 0 from the start, so that an alert on a rate works
// before the first refusal.
func (m *receiverMetrics) initReasons() *receiverMetrics {
	for _, r := range []string{"missing_metric_name", "empty_label_name", "duplicate_label_name", "invalid_utf8",
		"invalid_histogram", "too_many_labels", "label_name_too_long", "label_value_too_long",
		"samples_and_histograms", "no_samples"} {
		m.rejectedSeries.WithLabelValues(r)
	}
	for _, r := range []string{reasonMethod, reasonMediaType, reasonTooLarge, reasonTooManySeries, reasonReadTimeout,
		reasonReadError, reasonMalformed, reasonMemory, reasonUnavailable, reasonAppendRefused, reasonInternal} {
		m.rejectedRequests.WithLabelValues(r)
	}
	return m
}

func (m *receiverMetrics) observe(code int, elapsed time.Duration) {
	m.requests.WithLabelValues(strconv.Itoa(code)).Inc()
	m.requestDuration.Observe(elapsed.Seconds())
}

package remotewrite

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// receiverMetrics are the Handler's self-metrics.
type receiverMetrics struct {
	requests        *prometheus.CounterVec
	samples         prometheus.Counter
	rejectedSeries  *prometheus.CounterVec
	requestDuration prometheus.Histogram
}

func newReceiverMetrics(reg prometheus.Registerer) *receiverMetrics {
	return &receiverMetrics{
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
		requestDuration: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:                            "cardinal_receiver_request_duration_seconds",
			Help:                            "Time to handle a remote write request, from headers read to answer.",
			Buckets:                         []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  100,
			NativeHistogramMinResetDuration: time.Hour,
		})),
	}
}

func (m *receiverMetrics) observe(code int, elapsed time.Duration) {
	m.requests.WithLabelValues(strconv.Itoa(code)).Inc()
	m.requestDuration.Observe(elapsed.Seconds())
}

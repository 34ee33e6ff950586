package remotewrite

import (
	"net/http"
	"strconv"

	"github.com/prometheus/prometheus/prompb"
)

// The headers a Remote Write 2.0 receiver answers every request with, counting what it
// wrote: a 2.0 sender takes missing ones for 0 and a 2xx without any for a 1.0 receiver.
const (
	HeaderSamplesWritten    = "X-Prometheus-Remote-Write-Samples-Written"
	HeaderHistogramsWritten = "X-Prometheus-Remote-Write-Histograms-Written"
	HeaderExemplarsWritten  = "X-Prometheus-Remote-Write-Exemplars-Written"
)

// writtenCounts is what a request had written: the float samples, histogram samples and
// exemplars of the series the Appender took.
type writtenCounts struct {
	samples, histograms, exemplars int
}

// countWritten counts the series an Appender took.
func countWritten(series []prompb.TimeSeries) writtenCounts {
	var c writtenCounts
	for i := range series {
		c.samples += len(series[i].Samples)
		c.histograms += len(series[i].Histograms)
		c.exemplars += len(series[i].Exemplars)
	}
	return c
}

// set writes the three headers, zeros included.
func (c writtenCounts) set(h http.Header) {
	h.Set(HeaderSamplesWritten, strconv.Itoa(c.samples))
	h.Set(HeaderHistogramsWritten, strconv.Itoa(c.histograms))
	h.Set(HeaderExemplarsWritten, strconv.Itoa(c.exemplars))
}

package remotewrite

import (
	"fmt"

	"github.com/prometheus/prometheus/prompb"
)

// What the Remote Write 2.0 specification requires of a series beyond 1.0: samples or
// histograms, never both and never neither. A 2.0 series that breaks this is refused (400;
// the rest of the request is taken). Labels are held to 1.0's rules: unsorted ones are
// sorted and empty values dropped, as Prometheus's receiver does (and the receiver
// conformance suite, which sends labels in any order, expects).
var (
	// ErrSamplesAndHistograms: a 2.0 series with both float samples and histograms.
	ErrSamplesAndHistograms = fmt.Errorf("%w: samples and histograms in one series", ErrInvalidSeries)
	// ErrNoSamples: a 2.0 series with neither samples nor histograms.
	ErrNoSamples = fmt.Errorf("%w: no samples or histograms", ErrInvalidSeries)
)

// validateV2Series checks the rules of the 2.0 specification that 1.0 does not have.
func validateV2Series(ts *prompb.TimeSeries) error {
	switch {
	case len(ts.Samples) > 0 && len(ts.Histograms) > 0:
		return fmt.Errorf("%w: %d samples and %d histograms in series %s; a 2.0 series carries one kind",
			ErrSamplesAndHistograms, len(ts.Samples), len(ts.Histograms), describeSeries(ts.Labels))
	case len(ts.Samples) == 0 && len(ts.Histograms) == 0:
		return fmt.Errorf("%w in series %s", ErrNoSamples, describeSeries(ts.Labels))
	}
	return nil
}

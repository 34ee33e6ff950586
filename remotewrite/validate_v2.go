package remotewrite

import (
	"fmt"

	"github.com/prometheus/prometheus/prompb"
)

// What the Remote Write 2.0 specification requires of a series beyond what 1.0 receivers
// have always normalised: a 1.0 series with unsorted labels or an empty value is sorted and
// cleaned, as Prometheus does, but a 2.0 sender MUST send labels sorted, without empty
// names or values, and samples or histograms, never both and never neither. A 2.0 series
// that breaks one of these rules is refused (400; the rest of the request is taken).
var (
	// ErrUnsortedLabels: a 2.0 series whose label names do not ascend.
	ErrUnsortedLabels = fmt.Errorf("%w: labels not sorted by name", ErrInvalidSeries)
	// ErrEmptyLabelValue: a 2.0 series with a label whose value is empty.
	ErrEmptyLabelValue = fmt.Errorf("%w: empty label value", ErrInvalidSeries)
	// ErrSamplesAndHistograms: a 2.0 series with both float samples and histograms.
	ErrSamplesAndHistograms = fmt.Errorf("%w: samples and histograms in one series", ErrInvalidSeries)
	// ErrNoSamples: a 2.0 series with neither samples nor histograms.
	ErrNoSamples = fmt.Errorf("%w: no samples or histograms", ErrInvalidSeries)
)

// validateV2Series checks the rules of the 2.0 specification that validateSeries leaves to
// normalisation. plain says the Decoder already saw the labels sorted and non-empty.
func validateV2Series(ts *prompb.TimeSeries, plain bool) error {
	switch {
	case len(ts.Samples) > 0 && len(ts.Histograms) > 0:
		return fmt.Errorf("%w: %d samples and %d histograms in series %s; a 2.0 series carries one kind",
			ErrSamplesAndHistograms, len(ts.Samples), len(ts.Histograms), describeSeries(ts.Labels))
	case len(ts.Samples) == 0 && len(ts.Histograms) == 0:
		return fmt.Errorf("%w in series %s", ErrNoSamples, describeSeries(ts.Labels))
	case plain:
		return nil
	}
	for i, l := range ts.Labels {
		if l.Value == "" && l.Name != "" {
			return fmt.Errorf("%w for %s in series %s", ErrEmptyLabelValue, quoteBounded(l.Name), describeSeries(ts.Labels))
		}
		if i > 0 && ts.Labels[i-1].Name > l.Name {
			return fmt.Errorf("%w: %s after %s in series %s", ErrUnsortedLabels, quoteBounded(l.Name), quoteBounded(ts.Labels[i-1].Name), describeSeries(ts.Labels))
		}
	}
	return nil
}

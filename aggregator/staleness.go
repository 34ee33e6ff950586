package aggregator

import (
	"math"

	"github.com/prometheus/prometheus/model/value"
)

// staleNaN returns the Prometheus stale marker, the NaN with the bit pattern value.StaleNaN.
// It is one NaN among many: recognise it with value.IsStaleNaN, which compares bits, never
// with math.IsNaN.
func staleNaN() float64 { return math.Float64frombits(value.StaleNaN) }

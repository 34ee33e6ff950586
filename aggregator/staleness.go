package aggregator

import "math"

// staleNaNBits is the bit pattern Prometheus uses to mark a series stale. It is one NaN
// among many, so it must be recognised by its bits, never by math.IsNaN.
const staleNaNBits uint64 = 0x7ff0000000000002

// staleNaN returns the stale-marker value.
func staleNaN() float64 { return math.Float64frombits(staleNaNBits) }

// isStaleNaN reports whether v is a Prometheus stale marker.
func isStaleNaN(v float64) bool { return math.Float64bits(v) == staleNaNBits }

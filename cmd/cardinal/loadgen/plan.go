package loadgen

import (
	"math"
	"strconv"
	"time"
)

// metricKind is the type of a generated metric family.
type metricKind uint8

const (
	kindCounter metricKind = iota
	kindGauge
	kindHistogram
)

// family is one generated metric name and its type.
type family struct {
	name  string // full name for counters and gauges, base name for histograms
	kind  metricKind
	index int // index among the families of the same kind
}

// Parts of a family's time series: a counter or gauge has one (partPlain); a histogram has one
// per bucket (0..len(buckets), the last being +Inf), then partSum and partCount.
const (
	partPlain = -1
	partSum   = -2
	partCount = -3
)

// plan is the generated series set and the values every series takes in every round. Round r
// carries one sample per time series stamped startMs + r·intervalMs. Series are laid out
// slot-major (all metrics of pod slot 0, then slot 1, ...), as a scrape of one pod would be.
type plan struct {
	families    []family
	slots       int // series per metric: pod slots
	buckets     []float64
	constLabels []label
	valueLen    int
	instances   int
	groups      int
	churnPerRnd int // slots whose pod is replaced at every round >= 1
	startMs     int64
	intervalMs  int64
}

// newPlan lays out the families of cfg, with round 0 at startMs.
func newPlan(cfg config, startMs int64, interval time.Duration) *plan {
	p := &plan{
		slots:       cfg.seriesPerMetric,
		buckets:     cfg.buckets,
		constLabels: cfg.constLabels,
		valueLen:    cfg.labelValueLength,
		instances:   cfg.instances,
		groups:      cfg.groups,
		startMs:     startMs,
		intervalMs:  interval.Milliseconds(),
	}
	if cfg.churn > 0 {
		p.churnPerRnd = max(1, int(math.Round(cfg.churn*float64(cfg.seriesPerMetric))))
	}
	counts := apportion(cfg.metrics, []float64{cfg.mix.counter, cfg.mix.gauge, cfg.mix.histogram})
	for kind, n := range counts {
		for i := range n {
			f := family{kind: metricKind(kind), index: i}
			idx := strconv.Itoa(i)
			switch f.kind {
			case kindCounter:
				f.name = cfg.metricPrefix + "_counter_" + idx + "_total"
			case kindGauge:
				f.name = cfg.metricPrefix + "_gauge_" + idx
			case kindHistogram:
				f.name = cfg.metricPrefix + "_histogram_" + idx
			}
			p.families = append(p.families, f)
		}
	}
	return p
}

// apportion splits n into integer parts proportional to weights (largest remainder).
func apportion(n int, weights []float64) []int {
	total := 0.0
	for _, w := range weights {
		total += w
	}
	out := make([]int, len(weights))
	rems := make([]float64, len(weights))
	given := 0
	for i, w := range weights {
		exact := float64(n) * w / total
		out[i] = int(exact)
		rems[i] = exact - float64(out[i])
		given += out[i]
	}
	for ; given < n; given++ {
		best := 0
		for i := range rems {
			if rems[i] > rems[best] {
				best = i
			}
		}
		out[best]++
		rems[best] = -1
	}
	return out
}

// partsOf is the number of time series one slot of family f has.
func (p *plan) partsOf(f family) int {
	if f.kind == kindHistogram {
		return len(p.buckets) + 3 // buckets, +Inf, _sum, _count
	}
	return 1
}

// seriesPerSlot is the number of time series of one pod slot across all families.
func (p *plan) seriesPerSlot() int {
	n := 0
	for _, f := range p.families {
		n += p.partsOf(f)
	}
	return n
}

// seriesPerRound is the number of time series, and so of samples, in one round.
func (p *plan) seriesPerRound() int { return p.slots * p.seriesPerSlot() }

// timestamp is the timestamp in milliseconds of every sample of round r.
func (p *plan) timestamp(r int64) int64 { return p.startMs + r*p.intervalMs }

// generation counts how often slot j has had its pod replaced by round r. Churn replaces the
// next churnPerRnd slots, cyclically, at each round >= 1: rounds 1..r have replaced the
// positions [0, r·k) modulo the slot count.
func (p *plan) generation(j int, r int64) int64 {
	replaced := r * int64(p.churnPerRnd)
	if replaced <= int64(j) {
		return 0
	}
	return (replaced-int64(j)-1)/int64(p.slots) + 1
}

// birth is the round in which the current pod of slot j (at round r) appeared.
func (p *plan) birth(j int, r int64) int64 { return p.birthOf(j, p.generation(j, r)) }

// birthOf is the round in which generation g of slot j's pod appeared.
func (p *plan) birthOf(j int, g int64) int64 {
	if g == 0 {
		return 0
	}
	position := int64(j) + (g-1)*int64(p.slots)
	return position/int64(p.churnPerRnd) + 1
}

// podID is the number in the pod label value of slot j at round r: unique per pod ever created.
func (p *plan) podID(j int, r int64) int64 { return p.generation(j, r)*int64(p.slots) + int64(j) }

// step is the amount a counter of slot j grows by per round.
func step(j int) float64 { return float64(1 + j%10) }

// value is the sample value of part `part` of family f for slot j at round r. Counters and
// histogram parts grow linearly from the pod's birth, so they are monotonic per label set and
// restart when churn replaces the pod; gauges move within 1..100.
func (p *plan) value(f family, part, j int, r int64) float64 {
	return p.valueAt(f, part, j, r, float64(r-p.birth(j, r)+1))
}

// valueAt is value for a pod that is age rounds old (1 in the round it appeared).
func (p *plan) valueAt(f family, part, j int, r int64, age float64) float64 {
	switch f.kind {
	case kindGauge:
		return float64(1 + (int64(j)+int64(f.index)*7+r)%100)
	case kindHistogram:
		n := step(j) * age // observations per bucket so far
		switch part {
		case partCount:
			return n * float64(len(p.buckets)+1)
		case partSum:
			sum := 2 * p.buckets[len(p.buckets)-1] // the +Inf bucket's observations
			for _, b := range p.buckets {
				sum += b
			}
			return n * sum
		default:
			return n * float64(part+1) // cumulative: bucket b holds b+1 buckets' observations
		}
	default:
		return step(j) * age
	}
}

// podValue is the fixed-width pod label value for a pod id.
func (p *plan) podValue(id int64) string {
	return podPrefix + padded(id, p.valueLen-len(podPrefix))
}

// instanceValue is the instance label value of slot j.
func (p *plan) instanceValue(j int) string {
	return instancePrefix + padded(int64(j%p.instances), p.valueLen-len(instancePrefix))
}

// padded formats n zero-padded to width digits, keeping the low digits if n is wider.
func padded(n int64, width int) string {
	b := make([]byte, width)
	putDigits(b, n)
	return string(b)
}

// putDigits writes n zero-padded into all of b (low digits if n is wider).
func putDigits(b []byte, n int64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
}

// leValue formats a bucket bound as Prometheus does.
func leValue(b float64) string { return strconv.FormatFloat(b, 'g', -1, 64) }

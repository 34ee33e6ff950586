package aggregator

import (
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/rules"
)

// Local is the owner Router.Owner returns for an output series this member aggregates.
const Local = -1

// Router places output series on the members of a cluster (docs/design.md §5): every member
// routes with the same ring, so each output series is aggregated, and written downstream, by
// exactly one of them.
type Router interface {
	// Owner returns the index of the member that aggregates the output series with
	// placement key key, or Local.
	Owner(key uint64) int
}

// Route says how IngestRoute treats the series of one request in a cluster.
type Route struct {
	// Router places each (series, rule) pair; nil aggregates everything here.
	Router Router
	// Forward receives, once per series and owner, each input series that feeds an output
	// another member owns, and its index in the request. The series points into the
	// request: Forward must copy (encode) what it keeps before it returns. Nil for a request forwarded by a peer, which is never
	// forwarded again (one hop): its pairs owned elsewhere are not aggregated here (the
	// sender sent them to their owner) and are counted as not owned.
	Forward func(owner int, ts *prompb.TimeSeries, i int)
	// Forwarded marks a request a peer forwarded: the peer already wrote its raw series
	// (unmatched, or keep_input) downstream, so nothing of it is forwarded raw again.
	Forwarded bool
	// SenderRules is, for a forwarded request, the version of the rule set the sender routed
	// it by (IngestRoute's result), or 0 if unknown. When it is this member's, and the
	// request was routed by this member's ring (Disagrees false), a series that one rule
	// alone selects was forwarded for that rule: it is aggregated without computing its
	// placement again.
	SenderRules uint64
	// Disagrees marks a forwarded request routed by a ring other than this member's: its
	// series may feed outputs this member has already handed off (a sender that has not yet
	// seen the ring change). What they start here is handed off again at the next flush
	// tick, not the next window close, so that it reaches the owner before the input's next
	// sample does and its increase lands in its own window.
	Disagrees bool
}

// The placement key names an output series across the cluster: the rule, the output's
// label set without le, and its metric name without a histogram's or summary's component
// suffix, so that a histogram's buckets, _sum and _count land on one member. It is the sum
// of the rule's seed (its name and added labels), the hash of the metric name when the rule
// names outputs after their inputs, and one xxhash of the labels that tell its outputs apart
// (kept, not added by the rule, not le), in the order of the series' labels; a final mix
// spreads the sum over all 64 bits. Input labels are sorted (the receiver sorts them) and
// so are an output's, so the input side and the output side (placeKeyOfOutput) hash the
// same bytes. One hash of the labels together costs a member that forwards less than one
// per label did: placement is computed for every series it receives.

// placeSeed is the part of a rule's placement keys that does not depend on the series: its
// name and its added labels.
func (r *ruleState) placeSeed() uint64 {
	seed := xxhash.Sum64String(r.rule.Name)
	for i := range r.rule.AddLabels {
		seed += placeLabel(r.rule.AddLabels[i].Name, r.rule.AddLabels[i].Value)
	}
	return seed
}

// placeByName reports whether the metric name is part of the rule's placement keys: when
// its outputs take their names from several input metrics. A rule of one metric (or one
// histogram or summary family), or one that renames its outputs, names them all alike, and
// its name in the seed stands for them.
func (r *ruleState) placeByName() bool {
	if r.oneName || r.rule.OutputName != "" {
		return false
	}
	return !((r.rule.Type == rules.Histogram || r.rule.Type == rules.Summary) && r.rule.BaseName != "")
}

// placeLabel hashes one label of a placement key: xxhash of name, 0xff, value. Labels that
// fit a buffer on the stack are hashed in one call, which costs a third of feeding a
// streaming digest three writes; longer ones are streamed, to the same hash.
func placeLabel(name, value string) uint64 {
	var buf [192]byte
	if n := len(name) + 1 + len(value); n <= len(buf) {
		copy(buf[:], name)
		buf[len(name)] = 0xff
		copy(buf[len(name)+1:], value)
		return xxhash.Sum64(buf[:n])
	}
	var d xxhash.Digest
	d.Reset()
	_, _ = d.WriteString(name)
	_, _ = d.Write([]byte{0xff})
	_, _ = d.WriteString(value)
	return d.Sum64()
}

// placeName hashes an input metric name for a placement key, without a histogram's or
// summary's component suffix.
func (r *ruleState) placeName(input string) uint64 {
	if r.rule.Type == rules.Histogram || r.rule.Type == rules.Summary {
		for _, s := range [...]string{"_bucket", "_sum", "_count"} {
			if len(input) > len(s) && strings.HasSuffix(input, s) {
				input = input[:len(input)-len(s)]
				break
			}
		}
	}
	return placeLabel(rules.MetricNameLabel, input)
}

// placesByKept reports whether the labels a placement key of r hashes are exactly those
// seriesHashes keeps, in the same order: r selects one metric name (neither side has it),
// is no classic histogram (le is kept but not placed), and adds no label it could keep (a
// kept input label of an added label's name is not placed). Then the hash of the labels
// placeKeyOfInput computes is the input's output hash, and a member that aggregates the
// pair here does not hash its kept labels again.
func (r *ruleState) placesByKept() bool {
	if !r.oneName || r.rule.Type == rules.Histogram {
		return false
	}
	for i := range r.rule.AddLabels {
		if r.keeps(r.rule.AddLabels[i].Name) {
			return false
		}
	}
	return true
}

// placesPlain reports whether placeKeyOfInput hashes exactly the labels but __name__ that
// r's grouping keeps: no replica label to leave out (ha), no le (a classic histogram), no
// added label.
func (r *ruleState) placesPlain() bool {
	return r.replica == "" && r.rule.Type != rules.Histogram && len(r.rule.AddLabels) == 0
}

// placeKeyOfInput returns the placement key of the output series that input series lbls,
// of metric name input (read only when r.placeNamed), feeds, and the hash of the labels it
// placed by (the output hash, when r.placeKept); scratch is a buffer it may use, returned
// for reuse.
func (r *ruleState) placeKeyOfInput(scratch []byte, lbls []prompb.Label, input string) (key, kept uint64, _ []byte) {
	sum := r.placeBase
	if r.placeNamed {
		sum += r.placeName(input)
	}
	buf := scratch[:0]
	if r.placePlain {
		// The loop below, without the checks that cannot hold, and with the rule's
		// fields it reads in locals: a member places every series its agents send.
		grouping, byMode := &r.grouping, r.rule.ByMode
		for i := range lbls {
			if l := &lbls[i]; l.Name != rules.MetricNameLabel && grouping.has(l.Name) == byMode {
				buf = appendLabel(buf, l)
			}
		}
	} else {
		for i := range lbls {
			l := &lbls[i]
			if l.Name == rules.MetricNameLabel || !r.keeps(l.Name) || r.placeSkips(l.Name) || hasLabel(r.rule.AddLabels, l.Name) {
				continue
			}
			buf = appendLabel(buf, l)
		}
	}
	kept = xxhash.Sum64(buf)
	return mix64(sum + kept), kept, buf
}

// placeKeyOfOutput returns the placement key of an output series from the labels of its
// first output kind: the same key placeKeyOfInput gives its inputs.
func (r *ruleState) placeKeyOfOutput(lbls []prompb.Label) uint64 {
	sum := r.placeBase // the added labels, which are among lbls too
	var arr [256]byte
	buf := arr[:0]
	for i := range lbls {
		l := &lbls[i]
		switch {
		case l.Name == rules.MetricNameLabel:
			if r.placeNamed {
				// The output is named after its input (no output_name) plus the first
				// kind's suffix, if any.
				sum += r.placeName(strings.TrimSuffix(l.Value, r.rule.OutputMetricName("", r.outputs[0].name)))
			}
		case r.placeSkips(l.Name), hasLabel(r.rule.AddLabels, l.Name):
		default:
			buf = appendLabel(buf, l)
		}
	}
	return mix64(sum + xxhash.Sum64(buf))
}

// placeSkips reports whether a kept label is left out of the placement key: a classic
// histogram's le, which tells the buckets of one output apart.
func (r *ruleState) placeSkips(name string) bool {
	return r.rule.Type == rules.Histogram && name == "le"
}

// mix64 is the finaliser of MurmurHash3: it spreads a sum of hashes over every bit.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb53a3f1ff1e9
	x ^= x >> 33
	return x
}

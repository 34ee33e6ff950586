package remotewrite

import "github.com/prometheus/prometheus/prompb"

// labelFacts is what the Decoder saw of one series' labels while reading them, so that
// validation of the usual series need not read its labels a second time.
type labelFacts struct {
	// plain: every label came in the usual encoding (see plainLabel) and nothing was cut
	// by the label cap; all names and values are non-empty ASCII; names strictly ascend
	// (sorted, no duplicates); __name__ is one of them. Such a series is valid as decoded
	// if it is within the length and count limits.
	plain bool
	// longestName and longestValue are in bytes; meaningful only when plain.
	longestName, longestValue int
}

// within reports whether the facts alone show the labels of a series valid and unchanged
// by validation under bounds b.
func (f *labelFacts) within(labels int, b seriesBounds) bool {
	return f.plain && labels <= b.labels && f.longestName <= b.name && f.longestValue <= b.value
}

// labelScan gathers labelFacts while a series is decoded: which fields held its labels, and
// whether any was outside the plain case. The labels themselves are checked by facts, right
// after the series is decoded, while they are still in cache.
type labelScan struct {
	irregular  bool // a label outside the plain case was seen
	start, end int  // the bytes of the series holding its labels, one run of fields
}

// add records a label in the usual encoding whose field (tag to end) is series[from:to].
// The labels must be one run of fields, as every encoder writes them: their tag and length
// bytes are ASCII, so that facts checks all names and values with one pass over the run.
func (s *labelScan) add(from, to int) {
	if s.end == 0 {
		s.start = from
	} else if from != s.end {
		s.irregular = true
	}
	s.end = to
}

// unusual records a label outside the plain case: validation reads the series in full.
func (s *labelScan) unusual() { s.irregular = true }

// facts returns what the scan found, given the series' bytes and its decoded labels.
func (s *labelScan) facts(series []byte, labels []prompb.Label) labelFacts {
	if s.irregular || asciiBits(bytesString(series[s.start:s.end]))&0x8080808080808080 != 0 {
		return labelFacts{}
	}
	f := labelFacts{plain: true}
	hasName := false
	prev := ""
	for i := range labels {
		name, value := labels[i].Name, labels[i].Value
		if name == "" || value == "" {
			return labelFacts{}
		}
		// Strictly ascending; names mostly differ in their first byte, which decides
		// without a call.
		if i > 0 && (name[0] < prev[0] || name[0] == prev[0] && name <= prev) {
			return labelFacts{}
		}
		hasName = hasName || name == metricNameLabel
		f.longestName = max(f.longestName, len(name))
		f.longestValue = max(f.longestValue, len(value))
		prev = name
	}
	f.plain = hasName
	return f
}

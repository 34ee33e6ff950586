package timescale

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/prompb"
)

// metricNameLabel is the label that holds the metric name; it is stored in the metric column,
// not in labels.
const metricNameLabel = "__name__"

// labelSeparator separates names and values in the byte string that is hashed into a
// series id; 0xff never occurs in UTF-8.
const labelSeparator = 0xff

// seriesHasher computes series ids, reusing its buffers; it belongs to one goroutine.
type seriesHasher struct {
	buf    []byte
	sorted []prompb.Label // a sorted copy of a label set that arrived unsorted
}

// seriesID is the deterministic id of a label set: xxhash64 over the labels sorted by name,
// each written as name 0xff value 0xff, reinterpreted as a signed bigint. The same label set
// gets the same id in every cardinal instance and across restarts, which is what makes
// writes idempotent without a lookup. labels is not modified (other downstreams may be
// reading the same series): an unsorted set is sorted in a copy.
func (h *seriesHasher) seriesID(labels []prompb.Label) int64 {
	if !slices.IsSortedFunc(labels, compareLabels) {
		h.sorted = append(h.sorted[:0], labels...)
		slices.SortFunc(h.sorted, compareLabels)
		labels = h.sorted
	}
	b := h.buf[:0]
	for _, l := range labels {
		b = append(b, l.Name...)
		b = append(b, labelSeparator)
		b = append(b, l.Value...)
		b = append(b, labelSeparator)
	}
	h.buf = b
	return int64(xxhash.Sum64(b))
}

func compareLabels(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) }

// seriesRow is a new series as stored in the series table.
type seriesRow struct {
	id     int64
	metric string
	labels string // JSON object of the labels other than __name__
}

// newSeriesRow builds the series-table row of a label set. PostgreSQL text and jsonb cannot
// hold NUL bytes or invalid UTF-8, so those are replaced by U+FFFD in the stored strings
// (the id is still computed from the original bytes).
func newSeriesRow(id int64, labels []prompb.Label) seriesRow {
	row := seriesRow{id: id}
	m := make(map[string]string, len(labels))
	for _, l := range labels {
		if l.Name == metricNameLabel {
			row.metric = storableText(l.Value)
			continue
		}
		m[storableText(l.Name)] = storableText(l.Value)
	}
	b, err := json.Marshal(m) // keys come out sorted
	if err != nil {
		// A map[string]string always marshals.
		panic(err)
	}
	row.labels = string(b)
	return row
}

// storableText makes s acceptable to PostgreSQL text and jsonb columns.
func storableText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return s
}

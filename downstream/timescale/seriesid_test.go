package timescale

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

func labels(kv ...string) []prompb.Label {
	var ls []prompb.Label
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return ls
}

func TestSeriesID(t *testing.T) {
	var h seriesHasher
	reference := h.seriesID(labels("__name__", "up", "instance", "a:9100", "job", "node"))
	tests := []struct {
		name   string
		labels []prompb.Label
		same   bool
	}{
		{"independent_of_label_order", labels("job", "node", "__name__", "up", "instance", "a:9100"), true},
		{"differs_when_a_value_differs", labels("__name__", "up", "instance", "b:9100", "job", "node"), false},
		{"differs_when_a_label_is_added", labels("__name__", "up", "instance", "a:9100", "job", "node", "zone", "x"), false},
		{"separator_keeps_names_and_values_apart", labels("__name__", "up", "instance", "a:9100", "jo", "bnode"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := h.seriesID(tt.labels) == reference; got != tt.same {
				t.Errorf("same id as the reference = %v, want %v", got, tt.same)
			}
		})
	}
	// The same series may be on its way to other downstreams at the same time.
	t.Run("leaves_unsorted_labels_as_they_are", func(t *testing.T) {
		in := labels("job", "node", "__name__", "up", "instance", "a:9100")
		before := slices.Clone(in)
		if h.seriesID(in) != reference {
			t.Error("unsorted labels got another id")
		}
		if !slices.EqualFunc(in, before, func(a, b prompb.Label) bool { return a.Name == b.Name && a.Value == b.Value }) {
			t.Errorf("labels changed to %v, want %v", in, before)
		}
	})
	// Ids are stored in databases: they must never change between versions of cardinal.
	t.Run("stable_across_versions", func(t *testing.T) {
		const want int64 = -5779341791654072611 // xxhash64("__name__\xffup\xffinstance\xffa:9100\xffjob\xffnode\xff")
		if reference != want {
			t.Errorf("series id = %d, want %d", reference, want)
		}
	})
}

func TestNewSeriesRow(t *testing.T) {
	tests := []struct {
		name       string
		labels     []prompb.Label
		wantMetric string
		wantLabels map[string]string
	}{
		{
			name:       "metric_name_in_its_own_column",
			labels:     labels("__name__", "http_requests_total", "code", "200", "job", "api"),
			wantMetric: "http_requests_total",
			wantLabels: map[string]string{"code": "200", "job": "api"},
		},
		{
			name:       "quotes_backslashes_and_unicode_kept",
			labels:     labels("__name__", "x", "path", `/a"b\c`, "city", "Zürich 🚀"),
			wantMetric: "x",
			wantLabels: map[string]string{"path": `/a"b\c`, "city": "Zürich 🚀"},
		},
		{
			name:       "nul_and_invalid_utf8_replaced",
			labels:     labels("__name__", "x\x00y", "bad", "a\xffb"),
			wantMetric: "x\uFFFDy",
			wantLabels: map[string]string{"bad": "a\uFFFDb"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			row := newSeriesRow(1, tt.labels)
			if row.metric != tt.wantMetric {
				t.Errorf("metric = %q, want %q", row.metric, tt.wantMetric)
			}
			var got map[string]string
			if err := json.Unmarshal([]byte(row.labels), &got); err != nil {
				t.Fatalf("labels %s: %v", row.labels, err)
			}
			if len(got) != len(tt.wantLabels) {
				t.Errorf("labels = %v, want %v", got, tt.wantLabels)
			}
			for k, v := range tt.wantLabels {
				if got[k] != v {
					t.Errorf("label %q = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

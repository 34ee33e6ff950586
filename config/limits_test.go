package config

import (
	"strings"
	"testing"

	"github.com/cardinal-proxy/cardinal/config/setting"
	"github.com/cardinal-proxy/cardinal/remotewrite"
)

// downstream is the two lines every test config needs to be valid.
const withDownstream = "aggregator:\n  downstream_url: http://prometheus:9090/api/v1/write\n"

func TestServerLimitsAndMemoryLimit(t *testing.T) {
	tests := []struct {
		name       string
		yaml       string
		want       remotewrite.LimitsConfig
		wantMemory setting.ByteSize
		wantErr    string // substring of the error, with its file:line
	}{
		{"absent_means_the_defaults", "server: {}\n", limits(50000, 64, 1024, 4096), 0, ""},
		{"keys_given_override_one_by_one", "server:\n  limits:\n    max_series_per_request: 10\n    max_label_value_length: 200\n  memory_limit: 1GiB\n",
			limits(10, 64, 1024, 200), 1 << 30, ""},
		{"zero_turns_a_limit_off", "server:\n  limits:\n    max_labels_per_series: 0\n", limits(50000, 0, 1024, 4096), 0, ""},
		{"negative_limit_is_an_error_at_its_line", "server:\n  limits:\n\n    max_label_name_length: -1\n", remotewrite.LimitsConfig{}, 0, "cardinal.yaml:6: invalid limit \"-1\""},
		{"not_a_number_is_an_error", "server:\n  limits:\n    max_series_per_request: lots\n", remotewrite.LimitsConfig{}, 0, "cardinal.yaml:5:"},
		{"unknown_limit_key_is_an_error", "server:\n  limits:\n    max_samples: 3\n", remotewrite.LimitsConfig{}, 0, "cardinal.yaml:5:"},
		{"memory_limit_takes_units", "server:\n  memory_limit: 512MiB\n", limits(50000, 64, 1024, 4096), 512 << 20, ""},
		{"bad_memory_limit_is_an_error", "server:\n  memory_limit: much\n", remotewrite.LimitsConfig{}, 0, "cardinal.yaml:4:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseYAML(t, withDownstream+tt.yaml)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Server.Limits != tt.want || cfg.Server.MemoryLimit != tt.wantMemory {
				t.Errorf("limits %+v memory %d, want %+v %d", cfg.Server.Limits, cfg.Server.MemoryLimit, tt.want, tt.wantMemory)
			}
		})
	}
}

func TestChangedLimitChangesTheConfigHash(t *testing.T) {
	a := mustParse(t, withDownstream+"server:\n  limits:\n    max_labels_per_series: 30\n")
	b := mustParse(t, withDownstream+"server:\n  limits:\n    max_labels_per_series: 31\n")
	if a.Hash == b.Hash {
		t.Error("a changed limit should change the configuration hash")
	}
}

// limits is a LimitsConfig in the order the section lists its keys.
func limits(series, labels, nameLen, valueLen setting.Limit) remotewrite.LimitsConfig {
	return remotewrite.LimitsConfig{MaxSeriesPerRequest: series, MaxLabelsPerSeries: labels,
		MaxLabelNameLength: nameLen, MaxLabelValueLength: valueLen}
}

package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/aggregator"
	"github.com/cardinal-proxy/cardinal/config/setting"
	"github.com/cardinal-proxy/cardinal/downstream"
	"github.com/cardinal-proxy/cardinal/downstream/timescale"
	"github.com/cardinal-proxy/cardinal/internal/testcert"
	"github.com/cardinal-proxy/cardinal/remotewrite"
	"github.com/cardinal-proxy/cardinal/rules"
)

func TestDesignExampleParsesAsWritten(t *testing.T) {
	const path = "../configs/design-example.yaml"
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.ListenAddr != ":9091" || time.Duration(cfg.Aggregator.FlushInterval) != 15*time.Second {
		t.Errorf("server/aggregator = %+v / %+v", cfg.Server, cfg.Aggregator)
	}
	if len(cfg.Downstream.RemoteWrite) != 1 ||
		cfg.Downstream.RemoteWrite[0].URL != "http://prometheus:9090/api/v1/write" ||
		cfg.Downstream.RemoteWrite[0].Name != "prometheus:9090" {
		t.Errorf("downstream_url did not become one remote_write entry: %+v", cfg.Downstream.RemoteWrite)
	}
	common := rules.Rule{
		Outputs: []string{"total"}, Interval: 15 * time.Second, FlushDelay: 10 * time.Second,
		Staleness: 5 * time.Minute, FirstSample: rules.FirstSampleBaseline,
	}
	counter, histogram := common, common
	counter.Name, counter.Source, counter.Type = "http_requests_total", path+":7", rules.Counter
	counter.MetricNames, counter.BaseName = []string{"http_requests_total"}, "http_requests_total"
	counter.Without = []string{"instance", "pod", "request_id"}
	histogram.Name, histogram.Source, histogram.Type = "http_request_duration_seconds", path+":10", rules.Histogram
	histogram.BaseName = "http_request_duration_seconds"
	histogram.MetricNames = []string{
		"http_request_duration_seconds_bucket", "http_request_duration_seconds_count", "http_request_duration_seconds_sum",
	}
	histogram.Without = []string{"instance", "pod"} // le is not dropped
	want := []rules.Rule{counter, histogram}

	if len(cfg.Rules) != len(want) {
		t.Fatalf("got %d rules, want %d", len(cfg.Rules), len(want))
	}
	for i, r := range cfg.Rules {
		if r.Fingerprint == 0 {
			t.Errorf("rule %d has no fingerprint", i)
		}
		got := *r
		got.Fingerprint = 0
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("rule %d:\n got %+v\nwant %+v", i, got, want[i])
		}
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("unexpected warnings: %q", cfg.Warnings)
	}
}

func TestQuickstartParsesWithoutWarnings(t *testing.T) {
	cfg, err := Load("../configs/quickstart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("unexpected warnings: %q", cfg.Warnings)
	}
	if cfg.Downstream.File == nil || cfg.Downstream.File.Path != "-" {
		t.Errorf("file downstream = %+v, want stdout", cfg.Downstream.File)
	}
	if cfg.Aggregator.ForwardUnmatched() {
		t.Error("the quickstart forwards unmatched series: its terminal would be flooded with raw ones")
	}
	var types []rules.Type
	for _, r := range cfg.Rules {
		types = append(types, r.Type)
		if r.Interval != 10*time.Second || r.FlushDelay != 2*time.Second {
			t.Errorf("rule %s: interval %s flush_delay %s, want 10s and 2s", r.Name, r.Interval, r.FlushDelay)
		}
	}
	// node_exporter and Prometheus metrics, then the load generator's counter.
	want := []rules.Type{rules.Counter, rules.Counter, rules.Counter, rules.Gauge, rules.Histogram, rules.Counter}
	if !slices.Equal(types, want) {
		t.Errorf("rule types = %v, want %v", types, want)
	}
	if !slices.Equal(cfg.Rules[3].Outputs, []string{"max", "sum"}) {
		t.Errorf("gauge outputs = %v", cfg.Rules[3].Outputs)
	}
}

func TestDefaultsFillEveryUnsetKey(t *testing.T) {
	cfg := mustParse(t, `
downstream:
  remote_write:
    - url: http://a:9090/api/v1/write
  timescaledb:
    - dsn: postgres://localhost/metrics
rules:
  - metric_name: x
    type: counter
`)
	wantServer := remotewrite.ServerConfig{ListenAddr: ":9091", MaxRequestBytes: 32 << 20,
		ReadTimeout: setting.Duration(30 * time.Second), WriteTimeout: setting.Duration(30 * time.Second),
		Limits: remotewrite.LimitsConfig{MaxSeriesPerRequest: 50000, MaxLabelsPerSeries: 64, MaxLabelNameLength: 1024, MaxLabelValueLength: 4096}}
	if cfg.Server != wantServer {
		t.Errorf("server = %+v, want %+v", cfg.Server, wantServer)
	}
	wantAgg := AggregatorSection{Config: aggregator.Config{Defaults: rules.Defaults{FlushInterval: setting.Duration(15 * time.Second), FlushDelay: setting.Duration(10 * time.Second),
		Staleness: setting.Duration(5 * time.Minute), HA: rules.HAConfig{GroupLabel: "cluster", ReplicaLabel: "__replica__",
			FailoverTimeout: setting.Duration(30 * time.Second)}}, Unmatched: aggregator.UnmatchedForward, WarnUnmatchedAfter: setting.Duration(10 * time.Minute)}}
	if cfg.Aggregator != wantAgg {
		t.Errorf("aggregator = %+v, want %+v", cfg.Aggregator, wantAgg)
	}
	wantRW := downstream.RemoteWriteConfig{Name: "a:9090", URL: "http://a:9090/api/v1/write", Timeout: setting.Duration(30 * time.Second),
		Queue: downstream.QueueConfig{MaxBytes: 64 << 20, MaxSamplesPerSend: 2000, Shards: 4,
			MinBackoff: setting.Duration(30 * time.Millisecond), MaxBackoff: setting.Duration(5 * time.Second)},
		MetadataConfig: downstream.MetadataConfig{Send: true, SendInterval: setting.Duration(time.Minute), MaxSamplesPerSend: 500}}
	if !reflect.DeepEqual(cfg.Downstream.RemoteWrite, []downstream.RemoteWriteConfig{wantRW}) {
		t.Errorf("remote_write = %+v, want %+v", cfg.Downstream.RemoteWrite, wantRW)
	}
	wantTS := timescale.Config{Name: "timescaledb-1", DSN: "postgres://localhost/metrics",
		ChunkInterval: setting.Duration(24 * time.Hour), PartitionAhead: setting.Duration(72 * time.Hour),
		BatchSize: 5000, MaxQueueBytes: 64 << 20}
	if !reflect.DeepEqual(cfg.Downstream.TimescaleDB, []timescale.Config{wantTS}) {
		t.Errorf("timescaledb = %+v, want %+v", cfg.Downstream.TimescaleDB, wantTS)
	}
}

func TestPartialSectionsKeepDefaultsOfUnsetKeys(t *testing.T) {
	cfg := mustParse(t, `
server:
  read_timeout: 5s
aggregator:
downstream:
  remote_write:
    - url: http://a/write
      queue: {shards: 8}
`)
	if cfg.Server.ListenAddr != ":9091" || cfg.Server.ReadTimeout != setting.Duration(5*time.Second) {
		t.Errorf("server = %+v", cfg.Server)
	}
	if cfg.Aggregator.FlushInterval != setting.Duration(15*time.Second) {
		t.Errorf("a null aggregator section lost its defaults: %+v", cfg.Aggregator)
	}
	q := cfg.Downstream.RemoteWrite[0].Queue
	if q.Shards != 8 || q.MaxSamplesPerSend != 2000 || q.MaxBytes != 64<<20 {
		t.Errorf("queue = %+v, want shards 8 and the other defaults", q)
	}
}

func TestRuleInheritsAggregatorDefaults(t *testing.T) {
	tests := []struct {
		name                       string
		aggregator, rule           string
		interval, delay, staleness time.Duration
	}{
		{"all_inherited", "flush_interval: 1m\n  flush_delay: 20s\n  staleness: 10m", "",
			time.Minute, 20 * time.Second, 10 * time.Minute},
		{"rule_overrides_all", "flush_interval: 1m", "\n    interval: 30s\n    flush_delay: 0s\n    staleness: 2m",
			30 * time.Second, 0, 2 * time.Minute},
		{"default_flush_delay_is_cut_to_a_short_interval", "flush_interval: 15s", "\n    interval: 5s",
			5 * time.Second, 5 * time.Second, 5 * time.Minute},
		{"default_flush_delay_is_cut_to_a_short_aggregator_interval", "flush_interval: 4s", "",
			4 * time.Second, 4 * time.Second, 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, "downstream: {file: {path: x}}\naggregator:\n  "+tt.aggregator+
				"\nrules:\n  - metric_name: x\n    type: counter"+tt.rule+"\n")
			r := cfg.Rules[0]
			if r.Interval != tt.interval || r.FlushDelay != tt.delay || r.Staleness != tt.staleness {
				t.Errorf("interval/flush_delay/staleness = %s/%s/%s, want %s/%s/%s",
					r.Interval, r.FlushDelay, r.Staleness, tt.interval, tt.delay, tt.staleness)
			}
		})
	}
}

func TestRuleCompilation(t *testing.T) {
	tests := []struct {
		name  string
		rule  string
		check func(t *testing.T, r *rules.Rule)
	}{
		{"keep_labels_on_histogram_keeps_le", "metric_name: h\n    type: histogram\n    keep_labels: [job]",
			func(t *testing.T, r *rules.Rule) {
				if !r.ByMode || !slices.Equal(r.By, []string{"job", "le"}) || r.Without != nil {
					t.Errorf("by mode %v by %v without %v", r.ByMode, r.By, r.Without)
				}
			}},
		{"by_alias_sorted", "metric_name: g\n    type: gauge\n    by: [zone, app]",
			func(t *testing.T, r *rules.Rule) {
				if !r.ByMode || !slices.Equal(r.By, []string{"app", "zone"}) {
					t.Errorf("by %v", r.By)
				}
			}},
		{"empty_keep_labels_aggregates_everything", "metric_name: g\n    type: gauge\n    keep_labels: []",
			func(t *testing.T, r *rules.Rule) {
				if !r.ByMode || len(r.By) != 0 {
					t.Errorf("by mode %v by %v", r.ByMode, r.By)
				}
			}},
		{"without_alias_sorted", "metric_name: c\n    type: counter\n    without: [pod, instance]",
			func(t *testing.T, r *rules.Rule) {
				if r.ByMode || !slices.Equal(r.Without, []string{"instance", "pod"}) {
					t.Errorf("without %v", r.Without)
				}
			}},
		{"histogram_base_name_is_expanded", "metric_name: h\n    type: histogram",
			func(t *testing.T, r *rules.Rule) {
				if r.BaseName != "h" || !slices.Equal(r.MetricNames, []string{"h_bucket", "h_count", "h_sum"}) {
					t.Errorf("base %q names %v", r.BaseName, r.MetricNames)
				}
			}},
		{"summary_includes_quantile_series", "metric_name: s\n    type: summary",
			func(t *testing.T, r *rules.Rule) {
				if r.BaseName != "s" || !slices.Equal(r.MetricNames, []string{"s", "s_count", "s_sum"}) {
					t.Errorf("base %q names %v", r.BaseName, r.MetricNames)
				}
			}},
		{"match_with_exact_name_fills_metric_names_and_keeps_other_matchers",
			"match: 'h_bucket{job=\"api\", env!=\"dev\"}'\n    type: histogram",
			func(t *testing.T, r *rules.Rule) {
				if r.BaseName != "h" || !slices.Equal(r.MetricNames, []string{"h_bucket", "h_count", "h_sum"}) {
					t.Errorf("base %q names %v", r.BaseName, r.MetricNames)
				}
				if got := matcherStrings(r.Matchers); !slices.Equal(got, []string{`env!="dev"`, `job="api"`}) {
					t.Errorf("matchers %v (want sorted, without __name__)", got)
				}
			}},
		{"match_with_name_regexp_keeps_it_as_a_matcher", "match: '{__name__=~\"http_.+\"}'\n    type: counter",
			func(t *testing.T, r *rules.Rule) {
				if r.BaseName != "" || r.MetricNames != nil || !slices.Equal(matcherStrings(r.Matchers), []string{`__name__=~"http_.+"`}) {
					t.Errorf("base %q names %v matchers %v", r.BaseName, r.MetricNames, matcherStrings(r.Matchers))
				}
			}},
		{"outputs_sorted_and_defaulted", "metric_name: g\n    type: gauge\n    outputs: [max, avg]",
			func(t *testing.T, r *rules.Rule) {
				if !slices.Equal(r.Outputs, []string{"avg", "max"}) {
					t.Errorf("outputs %v", r.Outputs)
				}
			}},
		{"histogram_accepts_rate", "metric_name: h\n    type: histogram\n    outputs: [rate, total]",
			func(t *testing.T, r *rules.Rule) {
				if !slices.Equal(r.Outputs, []string{"rate", "total"}) {
					t.Errorf("outputs %v", r.Outputs)
				}
			}},
		{"add_labels_sorted", "metric_name: c\n    type: counter\n    add_labels: {tier: agg, cluster: eu}",
			func(t *testing.T, r *rules.Rule) {
				want := []prompb.Label{{Name: "cluster", Value: "eu"}, {Name: "tier", Value: "agg"}}
				if !reflect.DeepEqual(r.AddLabels, want) {
					t.Errorf("add_labels %v", r.AddLabels)
				}
			}},
		{"everything_else_copied", "metric_name: c\n    type: counter\n    output_name: c_agg\n    keep_input: true\n    first_sample: count\n    max_input_series: 10\n    max_output_series: 5",
			func(t *testing.T, r *rules.Rule) {
				if r.OutputName != "c_agg" || !r.KeepInput || r.FirstSample != rules.FirstSampleCount ||
					r.MaxInputSeries != 10 || r.MaxOutputSeries != 5 || r.Name != "c_agg" {
					t.Errorf("rule %+v", r)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, withRules("  - "+tt.rule+"\n"))
			tt.check(t, cfg.Rules[0])
		})
	}
}

func matcherStrings(ms []*rules.Matcher) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.String())
	}
	return out
}

func TestDownstreamNormalisation(t *testing.T) {
	// The credential files exist (CheckFiles reads them): one relative to the config's
	// directory, one absolute elsewhere.
	dir, elsewhere := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "secrets"), 0o755); err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(elsewhere, "pw")
	for _, f := range []string{filepath.Join(dir, "secrets", "token"), pw} {
		if err := os.WriteFile(f, []byte("s3cr3t\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	testcert.Write(t, filepath.Join(dir, "secrets"), 1) // tls_config's ca_file, cert_file, key_file
	file := filepath.Join(dir, "cardinal.yaml")
	cfg, err := memLoader(nil, nil).Parse([]byte(`
aggregator:
  downstream_url: http://mimir:8080/api/v1/push
downstream:
  remote_write:
    - url: http://mimir:8080/api/v1/push
    - url: https://vm:8428/api/v1/write
      name: vm
      bearer_token_file: secrets/token
      basic_auth: null
      tls_config: {ca_file: secrets/cert.pem, cert_file: secrets/cert.pem, key_file: secrets/key.pem}
    - url: http://mimir:8080/other
      basic_auth: {username: u, password_file: `+pw+`}
  file: {path: out/series.txt}
  timescaledb:
    - dsn: postgres://a
      compression: true
    - dsn: postgres://b
`), file)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Downstream
	var names []string
	for _, rw := range d.RemoteWrite {
		names = append(names, rw.Name)
	}
	if want := []string{"mimir:8080", "vm", "mimir:8080_2", "mimir:8080_3"}; !slices.Equal(names, want) {
		t.Errorf("remote_write names = %v, want %v (downstream_url last)", names, want)
	}
	if got := d.RemoteWrite[1].BearerTokenFile; got != filepath.Join(dir, "secrets", "token") {
		t.Errorf("bearer_token_file = %q, want it resolved against the config dir", got)
	}
	if got, want := *d.RemoteWrite[1].TLSConfig, (downstream.TLSConfig{
		CAFile:   filepath.Join(dir, "secrets", "cert.pem"),
		CertFile: filepath.Join(dir, "secrets", "cert.pem"),
		KeyFile:  filepath.Join(dir, "secrets", "key.pem"),
	}); got != want {
		t.Errorf("tls_config = %+v, want its files resolved against the config dir: %+v", got, want)
	}
	if got := d.RemoteWrite[2].BasicAuth.PasswordFile; got != pw {
		t.Errorf("absolute password_file changed to %q", got)
	}
	if d.File.Name != "file" || d.File.Path != filepath.Join(dir, "out", "series.txt") {
		t.Errorf("file = %+v", d.File)
	}
	if d.TimescaleDB[0].Name != "timescaledb-1" || d.TimescaleDB[1].Name != "timescaledb-2" {
		t.Errorf("timescaledb names = %q, %q", d.TimescaleDB[0].Name, d.TimescaleDB[1].Name)
	}
	if d.TimescaleDB[0].CompressAge() != 7*24*time.Hour || d.TimescaleDB[1].CompressAfter != 0 {
		t.Errorf("compress_after = %s, %s; want 7d with compression, 0 without", d.TimescaleDB[0].CompressAge(), d.TimescaleDB[1].CompressAfter)
	}
	wantWarn := file + ":4: downstreams \"mimir:8080\" and \"mimir:8080_3\" both write to http://mimir:8080/api/v1/push: every series is sent twice"
	if !slices.Contains(cfg.Warnings, wantWarn) {
		t.Errorf("warnings %q lack %q", cfg.Warnings, wantWarn)
	}
}

func TestValuesWithUnits(t *testing.T) {
	tests := []struct {
		name, value string
		want        setting.ByteSize
	}{
		{"plain_bytes", "1000", 1000},
		{"mebibytes", "32MiB", 32 << 20},
		{"megabytes", "2MB", 2_000_000},
		{"kibibytes_with_space", "4 KiB", 4096},
		{"gibibytes", "1GiB", 1 << 30},
		{"bytes_unit", "7B", 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, "downstream: {file: {path: x}}\nserver: {max_request_bytes: "+tt.value+"}\n")
			if cfg.Server.MaxRequestBytes != tt.want {
				t.Errorf("max_request_bytes %s = %d, want %d", tt.value, cfg.Server.MaxRequestBytes, tt.want)
			}
		})
	}
	durations := map[string]time.Duration{"1d": 24 * time.Hour, "90s": 90 * time.Second, "1h30m": 90 * time.Minute, "250ms": 250 * time.Millisecond}
	for text, want := range durations {
		cfg := mustParse(t, "downstream: {file: {path: x}}\nserver: {read_timeout: "+text+"}\n")
		if time.Duration(cfg.Server.ReadTimeout) != want {
			t.Errorf("read_timeout %s = %s, want %s", text, cfg.Server.ReadTimeout, want)
		}
	}
}

func TestSecretsDoNotPrint(t *testing.T) {
	cfg := mustParse(t, "downstream:\n  timescaledb:\n    - dsn: postgres://u:hunter2@db/m\n")
	dsn := cfg.Downstream.TimescaleDB[0].DSN
	if got := dsn.String(); got != "<secret>" {
		t.Errorf("DSN prints as %q", got)
	}
	if string(dsn) != "postgres://u:hunter2@db/m" {
		t.Errorf("DSN value lost: %q", string(dsn))
	}
}

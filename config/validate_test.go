package config

import (
	"errors"
	"slices"
	"testing"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

func TestRuleValidationErrorsNameTheLine(t *testing.T) {
	// withRules puts the first rule on line 3 of cardinal.yaml.
	tests := []struct {
		name  string
		rules string
		want  []string
	}{
		{"drop_labels_and_keep_labels_are_mutually_exclusive", `
  - metric_name: x
    type: counter
    drop_labels: [pod]
    keep_labels: [job]`[1:], []string{
			"cardinal.yaml:6: drop_labels and keep_labels are mutually exclusive: either drop some labels or keep some, not both"}},
		{"without_and_by_are_mutually_exclusive", `
  - metric_name: x
    by: [job]
    type: counter
    without: [pod]`[1:], []string{
			"cardinal.yaml:6: without and by are mutually exclusive: either drop some labels or keep some, not both"}},
		{"alias_and_its_setting_both_written", `
  - metric_name: x
    type: counter
    drop_labels: [pod]
    without: [instance]`[1:], []string{
			"cardinal.yaml:6: drop_labels and without are the same setting (without is an alias): write only one"}},
		{"type_is_required", `
  - metric_name: x`[1:], []string{
			"cardinal.yaml:3: type is required: counter, gauge, histogram or summary"}},
		{"unknown_type", `
  - metric_name: x
    type: timer`[1:], []string{
			`cardinal.yaml:4: unknown type "timer": use counter, gauge, histogram or summary`}},
		{"metric_name_and_match_are_mutually_exclusive", `
  - metric_name: x
    match: 'x{a="b"}'
    type: counter`[1:], []string{
			"cardinal.yaml:4: metric_name and match are mutually exclusive: use metric_name for one metric, match for a selector"}},
		{"a_selector_is_required", `
  - type: counter
    drop_labels: [pod]`[1:], []string{
			"cardinal.yaml:3: a rule needs metric_name (an exact metric name) or match (a series selector)"}},
		{"invalid_metric_name", `
  - metric_name: http-requests
    type: counter`[1:], []string{
			`cardinal.yaml:3: metric_name "http-requests" is not a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)`}},
		{"bad_selector_reports_the_column", `
  - type: counter
    match: 'x{a="b" c="d"}'`[1:], []string{
			`cardinal.yaml:4: match: column 9: unexpected "c=\"d\"}": expected , or } after a matcher`}},
		{"output_not_valid_for_type", `
  - metric_name: x
    type: counter
    outputs:
      - total
      - avg`[1:], []string{
			`cardinal.yaml:7: outputs: "avg" is not an output of a counter rule (valid: total, increase, rate)`}},
		{"output_listed_twice", `
  - metric_name: x
    type: gauge
    outputs: [max, max]`[1:], []string{
			`cardinal.yaml:5: outputs lists "max" twice`}},
		{"le_cannot_be_dropped_from_a_histogram", `
  - metric_name: h
    type: histogram
    drop_labels:
      - pod
      - le`[1:], []string{
			"cardinal.yaml:7: drop_labels: le cannot be dropped from a histogram: buckets are aggregated per le (histogram_quantile needs them)"}},
		{"name_label_cannot_be_dropped", `
  - metric_name: x
    type: counter
    drop_labels: [__name__]`[1:], []string{
			"cardinal.yaml:5: drop_labels: __name__ cannot be listed: the metric name is always kept (use output_name to rename)"}},
		{"name_label_cannot_be_kept_explicitly", `
  - metric_name: x
    type: counter
    by: [__name__, job]`[1:], []string{
			"cardinal.yaml:5: by: __name__ cannot be listed: the metric name is always kept (use output_name to rename)"}},
		{"invalid_and_repeated_label_names", `
  - metric_name: x
    type: counter
    drop_labels:
      - pod.name
      - pod
      - pod`[1:], []string{
			`cardinal.yaml:6: drop_labels: "pod.name" is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)`,
			`cardinal.yaml:8: drop_labels lists "pod" twice`}},
		{"interval_too_short", `
  - metric_name: x
    type: counter
    interval: 100ms`[1:], []string{
			"cardinal.yaml:5: interval must be at least 1s, not 100ms"}},
		{"rule_flush_delay_longer_than_interval", `
  - metric_name: x
    type: counter
    interval: 10s
    flush_delay: 11s`[1:], []string{
			"cardinal.yaml:6: flush_delay 11s is longer than the interval 10s: a window must close before the next one ends"}},
		{"zero_staleness", `
  - metric_name: x
    type: counter
    staleness: 0s`[1:], []string{
			"cardinal.yaml:5: staleness must be more than 0 (it is how long an input series lives without samples)"}},
		{"bad_duration", `
  - metric_name: x
    type: counter
    interval: 15`[1:], []string{
			`cardinal.yaml:5: invalid duration "15": write a number and a unit (ms, s, m, h, d, w, y), e.g. 30s, 5m, 1h, 1d`}},
		{"invalid_output_name", `
  - metric_name: x
    type: counter
    output_name: x-agg`[1:], []string{
			`cardinal.yaml:5: output_name "x-agg" is not a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)`}},
		{"bad_add_labels", `
  - metric_name: h
    type: histogram
    keep_labels: [job]
    add_labels:
      __name__: y
      le: "1"
      job: j
      bad-name: v
      empty: ""`[1:], []string{
			"cardinal.yaml:7: add_labels cannot set __name__: use output_name to rename the output",
			"cardinal.yaml:8: add_labels cannot set le on a histogram rule: le holds the bucket bounds",
			`cardinal.yaml:9: add_labels sets "job", which the rule also keeps from its inputs: remove it from one of them`,
			`cardinal.yaml:10: add_labels: "bad-name" is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)`,
			`cardinal.yaml:11: add_labels: "empty" has an empty value, which Prometheus treats as no label`}},
		{"unknown_first_sample", `
  - metric_name: x
    type: counter
    first_sample: skip`[1:], []string{
			`cardinal.yaml:5: first_sample must be baseline or count, not "skip"`}},
		{"first_sample_on_a_gauge", `
  - metric_name: x
    type: gauge
    first_sample: count`[1:], []string{
			"cardinal.yaml:5: first_sample applies to counter and histogram rules only, not gauge"}},
		{"negative_limits", `
  - metric_name: x
    type: counter
    max_input_series: -1
    max_output_series: -2`[1:], []string{
			"cardinal.yaml:5: max_input_series must not be negative (0 means unlimited)",
			"cardinal.yaml:6: max_output_series must not be negative (0 means unlimited)"}},
		{"explicit_duplicate_names", `
  - name: requests
    metric_name: x
    type: counter
  - name: requests
    metric_name: y
    type: counter`[1:], []string{
			`cardinal.yaml:6: rule name "requests" is already used at cardinal.yaml:3: names must be unique`}},
		{"every_rule_error_is_reported", `
  - metric_name: x
    type: counter
    outputs: [sum]
  - metric_name: y
  - type: gauge`[1:], []string{
			`cardinal.yaml:5: outputs: "sum" is not an output of a counter rule (valid: total, increase, rate)`,
			"cardinal.yaml:6: type is required: counter, gauge, histogram or summary",
			"cardinal.yaml:7: a rule needs metric_name (an exact metric name) or match (a series selector)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseYAML(t, withRules(tt.rules+"\n"))
			if got := errorLines(err); !slices.Equal(got, tt.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestConfigValidationErrorsNameTheLine(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"listen_addr_needs_a_port", `
server:
  listen_addr: "9091"
downstream: {file: {path: "-"}}`, []string{
			`cardinal.yaml:3: server.listen_addr "9091" is not host:port (write ":9091" for every interface, "127.0.0.1:9091" for this host only)`}},
		{"max_request_bytes_must_be_positive_and_well_formed", `
server:
  max_request_bytes: 0
  read_timeout: soon
downstream: {file: {path: "-"}}`, []string{
			// Decoding errors come first, alone: the values they spoil are not checked.
			`cardinal.yaml:4: invalid duration "soon": write a number and a unit (ms, s, m, h, d, w, y), e.g. 30s, 5m, 1h, 1d`}},
		{"negative_duration", `
server:
  read_timeout: -5s
downstream: {file: {path: "-"}}`, []string{
			`cardinal.yaml:3: invalid duration "-5s": a duration cannot be negative`}},
		{"bad_size", `
server:
  max_request_bytes: 32 megs
downstream: {file: {path: "-"}}`, []string{
			`cardinal.yaml:3: invalid size "32 megs": write a number of bytes or a number and a unit (B, KB, MB, GB, KiB, MiB, GiB), e.g. 32MiB`}},
		{"aggregator_checks", `
aggregator:
  flush_interval: 500ms
  staleness: 0s
  unmatched: keep
downstream: {file: {path: "-"}}`, []string{
			"cardinal.yaml:3: aggregator.flush_interval must be at least 1s, not 500ms",
			"cardinal.yaml:4: aggregator.staleness must be more than 0 (it is how long an input series lives without samples)",
			`cardinal.yaml:5: aggregator.unmatched must be forward or drop, not "keep"`}},
		{"explicit_flush_delay_longer_than_flush_interval", `
aggregator:
  flush_interval: 15s
  flush_delay: 16s
downstream: {file: {path: "-"}}`, []string{
			"cardinal.yaml:4: aggregator.flush_delay 16s is longer than flush_interval 15s: a window must close before the next one ends"}},
		{"warn_unmatched_after_shorter_than_a_window", `
aggregator:
  flush_interval: 15s
  warn_unmatched_after: 10s
downstream: {file: {path: "-"}}`, []string{
			"cardinal.yaml:4: aggregator.warn_unmatched_after 10s is shorter than flush_interval 15s: write 0 to never warn, or a longer time (default 10m)"}},
		{"downstream_url_must_be_http", `
aggregator:
  downstream_url: prometheus:9090/api/v1/write`, []string{
			`cardinal.yaml:3: aggregator.downstream_url: "prometheus:9090/api/v1/write" is not an http:// or https:// URL with a host`}},
		{"a_downstream_is_required", `
server:
  listen_addr: ":9091"`, []string{
			"cardinal.yaml:2: no downstream: set aggregator.downstream_url, downstream.remote_write, downstream.file or downstream.timescaledb"}},
		{"remote_write_checks", `
downstream:
  remote_write:
    - headers:
        Content-Type: text/plain
        authorization: Bearer x
        "bad header": v
      bearer_token: t
      basic_auth:
        password: p
        password_file: pw
      timeout: 0s
      queue:
        max_bytes: 0
        max_samples_per_send: 0
        shards: 0
        min_backoff: 0s
    - url: http://a/write
      queue: {min_backoff: 2s, max_backoff: 1s}`, []string{
			"cardinal.yaml:4: remote_write: url is required",
			"cardinal.yaml:4: remote_write: basic_auth, bearer_token and bearer_token_file are mutually exclusive",
			"cardinal.yaml:5: headers: Content-Type is set by cardinal's remote-write client and cannot be overridden",
			"cardinal.yaml:6: headers: set Authorization with basic_auth, bearer_token or bearer_token_file",
			`cardinal.yaml:7: headers: "bad header" is not a valid HTTP header name`,
			"cardinal.yaml:9: basic_auth: username is required",
			"cardinal.yaml:11: basic_auth: password and password_file are mutually exclusive",
			"cardinal.yaml:11: remote_write: basic_auth.password_file: open pw: no such file or directory",
			"cardinal.yaml:12: remote_write: timeout must be more than 0",
			"cardinal.yaml:14: queue.max_bytes must be more than 0",
			"cardinal.yaml:15: queue.max_samples_per_send must be more than 0",
			"cardinal.yaml:16: queue.shards must be more than 0",
			"cardinal.yaml:17: queue.min_backoff must be more than 0",
			"cardinal.yaml:19: queue.max_backoff 1s is shorter than min_backoff 2s"}},
		{"tls_config_checks", `
downstream:
  remote_write:
    - url: http://a/write
      tls_config:
        cert_file: client.pem
    - url: https://b/write
      tls_config: {ca_file: no-such-ca.pem, cert_file: no-such.pem, key_file: no-such-key.pem}`, []string{
			"cardinal.yaml:5: remote_write: tls_config is set but the url is http://; use https://",
			"cardinal.yaml:6: remote_write tls_config: cert_file and key_file go together",
			"cardinal.yaml:8: remote_write tls_config: ca_file: open no-such-ca.pem: no such file or directory",
			"cardinal.yaml:8: remote_write tls_config: cert_file: open no-such.pem: no such file or directory"}},
		{"file_needs_a_path", `
downstream:
  file: {name: out}`, []string{
			`cardinal.yaml:3: downstream.file.path is required ("-" writes to standard output)`}},
		{"timescaledb_checks", `
downstream:
  timescaledb:
    - chunk_interval: 30s
      compress_after: 7d
      batch_size: 0
      max_queue_bytes: 0`, []string{
			"cardinal.yaml:4: timescaledb: dsn is required (e.g. postgres://user:password@host:5432/metrics)",
			"cardinal.yaml:4: timescaledb: chunk_interval must be at least 1m, not 30s",
			"cardinal.yaml:5: timescaledb: compress_after needs compression: true",
			"cardinal.yaml:6: timescaledb: batch_size must be more than 0",
			"cardinal.yaml:7: timescaledb: max_queue_bytes must be more than 0"}},
		{"downstream_names_are_unique", `
downstream:
  remote_write:
    - {name: main, url: http://a/write}
  timescaledb:
    - {name: main, dsn: postgres://x}`, []string{
			`cardinal.yaml:6: downstream name "main" is used twice: names must be unique`}},
		{"bad_rule_files_pattern", `
downstream: {file: {path: "-"}}
rule_files:
  - "rules/[a.yaml"
  - ""`, []string{
			`cardinal.yaml:4: rule_files: bad pattern "rules/[a.yaml": syntax error in pattern`,
			"cardinal.yaml:5: rule_files: empty pattern"}},
		{"errors_of_every_section_are_reported_together", `
server: {listen_addr: "x"}
aggregator: {unmatched: no}
downstream: {file: {}}
rules:
  - metric_name: x`, []string{
			`cardinal.yaml:2: server.listen_addr "x" is not host:port (write ":9091" for every interface, "127.0.0.1:9091" for this host only)`,
			`cardinal.yaml:3: aggregator.unmatched must be forward or drop, not "no"`,
			`cardinal.yaml:4: downstream.file.path is required ("-" writes to standard output)`,
			"cardinal.yaml:6: type is required: counter, gauge, histogram or summary"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseYAML(t, tt.yaml+"\n") // line 1 is the empty line after the backquote
			if got := errorLines(err); !slices.Equal(got, tt.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestErrorsAreLocatedValues(t *testing.T) {
	_, err := parseYAML(t, withRules("  - metric_name: x\n"))
	var e *setting.Problem
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not a *setting.Problem", err)
	}
	if e.File != "cardinal.yaml" || e.Line != 3 || e.Msg != "type is required: counter, gauge, histogram or summary" {
		t.Errorf("error = %+v", e)
	}
}

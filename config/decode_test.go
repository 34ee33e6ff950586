package config

import (
	"slices"
	"testing"

	"github.com/cardinal-proxy/cardinal/rules"
)

func TestDecodingErrorsNameTheLine(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown_key_suggests_the_close_one", `
aggregator:
  flush_intervall: 15s
downstream: {file: {path: "-"}}`, []string{
			`cardinal.yaml:3: unknown key "flush_intervall" in aggregator; did you mean "flush_interval"?`}},
		{"unknown_key_lists_the_valid_ones", `
server:
  port: 9091
downstream: {file: {path: "-"}}`, []string{
			`cardinal.yaml:3: unknown key "port" in server; valid keys: listen_addr, max_request_bytes, read_timeout, write_timeout, limits, memory_limit`}},
		{"unknown_key_in_a_rule", `
downstream: {file: {path: "-"}}
rules:
  - metric_name: x
    type: counter
    drop_label: [pod]`, []string{
			`cardinal.yaml:6: unknown key "drop_label" in a rule; did you mean "drop_labels"?`}},
		{"unknown_keys_in_list_entries_with_defaults", `
downstream:
  remote_write:
    - url: http://a/write
      queue: {shard: 2}
  timescaledb:
    - dsn: postgres://x
      compresion: true`, []string{
			`cardinal.yaml:5: unknown key "shard" in queue; did you mean "shards"?`,
			`cardinal.yaml:8: unknown key "compresion" in a downstream.timescaledb entry; did you mean "compression"?`}},
		{"wal_and_cluster_keys_are_checked", `
downstream: {file: {path: "-"}}
wal:
  dri: /var/lib/cardinal
cluster:
  peers: [a:9091]
  forward: {queue: {shard: 2}}`, []string{
			`cardinal.yaml:4: unknown key "dri" in wal; did you mean "dir"?`,
			`cardinal.yaml:7: unknown key "shard" in queue; did you mean "shards"?`}},
		{"wrong_kind_of_value", `
downstream: {file: {path: "-"}}
rules:
  - metric_name: x
    type: counter
    drop_labels: pod
    keep_input: maybe`, []string{
			"cardinal.yaml:6: cannot unmarshal !!str `pod` into a list",
			"cardinal.yaml:7: cannot unmarshal !!str `maybe` into a boolean (true or false)"}},
		{"a_section_that_is_not_a_mapping", `
server: [":9091"]
downstream: {file: {path: "-"}}`, []string{
			"cardinal.yaml:2: cannot unmarshal !!seq into a mapping (server)"}},
		{"syntax_error", `
server:
  listen_addr: ":9091"
 aggregator: {}`, []string{
			"cardinal.yaml:4: did not find expected key"}},
		{"syntax_error_tab_indentation", `
server:
	listen_addr: ":9091"`, []string{
			"cardinal.yaml:3: found character that cannot start any token"}},
		{"syntax_error_unclosed_flow_list", `
rules:
  - metric_name: x
    type: counter
    drop_labels: [a, b
  - metric_name: y`, []string{
			"cardinal.yaml:5: did not find expected ',' or ']'"}},
		{"syntax_error_unterminated_quote", `
downstream: {file: {path: "-"}}
server:
  listen_addr: ":9091
  read_timeout: 5s`, []string{
			"cardinal.yaml:4: found unexpected end of stream"}},
		{"empty_list_item", `
downstream: {file: {path: "-"}}
rules:
  - metric_name: a
    type: counter
  -
  - metric_name: b
    drop_labels: [pod, ~]`, []string{
			"cardinal.yaml:6: empty list item: remove the - or give it a value",
			"cardinal.yaml:8: empty list item: remove the - or give it a value"}},
		{"duplicate_key", `
server:
  listen_addr: ":9091"
  listen_addr: ":9092"
downstream: {file: {path: "-"}}`, []string{
			`cardinal.yaml:4: mapping key "listen_addr" already defined at line 3`}},
		{"two_documents", `
downstream: {file: {path: "-"}}
---
server: {}`, []string{
			"cardinal.yaml:3: only one YAML document is allowed (remove the second ---)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseYAML(t, tt.yaml+"\n")
			if got := errorLines(err); !slices.Equal(got, tt.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestAnchorsAndMergeKeysShareRuleSettings(t *testing.T) {
	cfg := mustParse(t, `downstream: {file: {path: "-"}}
rules:
  - &common
    metric_name: a_total
    type: counter
    drop_labels: [pod]
  - <<: *common
    metric_name: b_total
`)
	if len(cfg.Rules) != 2 {
		t.Fatalf("got %d rules", len(cfg.Rules))
	}
	b := cfg.Rules[1]
	if b.BaseName != "b_total" || b.Type != rules.Counter || !slices.Equal(b.Without, []string{"pod"}) || b.Source != "cardinal.yaml:7" {
		t.Errorf("merged rule = %+v", b)
	}
}

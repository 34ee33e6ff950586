package config

import (
	"strings"
	"testing"
)

func TestHashChangesOnlyWithTheEffectiveConfig(t *testing.T) {
	const base = `downstream:
  remote_write:
    - url: http://a/write
      bearer_token: one
rule_files: [rules.yaml]
rules:
  - metric_name: x
    type: counter
`
	const ruleFile = "rules:\n  - metric_name: y\n    type: gauge\n"
	hash := func(t *testing.T, config, rules string) uint64 {
		t.Helper()
		cfg, err := memLoader(nil, map[string]string{"rules.yaml": rules}).Parse([]byte(config), "cardinal.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Hash
	}
	want := hash(t, base, ruleFile)
	same := []struct{ name, config, rules string }{
		{"comments_and_layout", "# main config\n" + `rules: [{type: counter, metric_name: x}]   # inline
rule_files: ["rules.yaml"]
downstream: {remote_write: [{bearer_token: one, url: "http://a/write"}]}
`, "# team rules\n" + ruleFile},
		{"defaults_written_out", base + "aggregator: {flush_interval: 15s, unmatched: forward}\n", ruleFile},
	}
	for _, tt := range same {
		t.Run(tt.name, func(t *testing.T) {
			if got := hash(t, tt.config, tt.rules); got != want {
				t.Errorf("hash changed: %x, want %x", got, want)
			}
		})
	}
	different := []struct{ name, config, rules string }{
		{"setting", base + "server: {listen_addr: \":9092\"}\n", ruleFile},
		{"inline_rule", base + "    drop_labels: [pod]\n", ruleFile},
		{"rule_file_content", base, ruleFile + "    outputs: [max]\n"},
		{"secret", strings.Replace(base, "bearer_token: one", "bearer_token: two", 1), ruleFile},
	}
	for _, tt := range different {
		t.Run(tt.name, func(t *testing.T) {
			if got := hash(t, tt.config, tt.rules); got == want {
				t.Errorf("hash did not change")
			}
		})
	}
}

package rules

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// compileWith compiles one YAML rule under defaults, returning it and the problems.
func compileWith(t *testing.T, d Defaults, rule string) (*Rule, *setting.Problems) {
	t.Helper()
	var cfgs []RuleConfig
	if err := yaml.Unmarshal([]byte(rule), &cfgs); err != nil || len(cfgs) != 1 {
		t.Fatalf("decoding %q: %v", rule, err)
	}
	var p setting.Problems
	return Compile([]Source{{Config: cfgs[0], At: nowhere{}}}, d, &p)[0], &p
}

func TestHAInheritedAndOverridden(t *testing.T) {
	on := DefaultDefaults()
	on.HA.Enabled = true
	const plain = "- {metric_name: x, type: counter, drop_labels: [pod]}"
	tests := []struct {
		name     string
		defaults Defaults
		rule     string
		want     *HA
	}{
		{"off_by_default", DefaultDefaults(), plain, nil},
		{"inherited", on, plain, &HA{GroupLabel: "cluster", ReplicaLabel: "__replica__", FailoverTimeout: 30 * time.Second}},
		{"rule_turns_it_on", DefaultDefaults(), "- {metric_name: x, type: counter, drop_labels: [pod], ha: {enabled: true}}",
			&HA{GroupLabel: "cluster", ReplicaLabel: "__replica__", FailoverTimeout: 30 * time.Second}},
		{"rule_turns_it_off", on, "- {metric_name: x, type: counter, drop_labels: [pod], ha: {enabled: false}}", nil},
		{"kube_prometheus_labels", on,
			"- {metric_name: x, type: counter, drop_labels: [pod], ha: {group_label: prometheus, replica_label: prometheus_replica, failover_timeout: 1m}}",
			&HA{GroupLabel: "prometheus", ReplicaLabel: "prometheus_replica", FailoverTimeout: time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, p := compileWith(t, tt.defaults, tt.rule)
			if p.Failed() {
				t.Fatal(p.Err())
			}
			if (r.HA == nil) != (tt.want == nil) || (r.HA != nil && *r.HA != *tt.want) {
				t.Errorf("HA = %+v, want %+v", r.HA, tt.want)
			}
		})
	}
}

func TestHAProblems(t *testing.T) {
	tests := []struct{ rule, want string }{
		{"ha: {enabled: true, replica_label: cluster}", `ha.replica_label and group_label are both "cluster"`},
		{"ha: {enabled: true, replica_label: __name__}", "ha.replica_label cannot be __name__"},
		{"ha: {enabled: true, group_label: 'a-b'}", `ha.group_label "a-b" is not a valid label name`},
		{"ha: {enabled: true, failover_timeout: 500ms}", "ha.failover_timeout must be at least 1s, not 500ms"},
		{"ha: {enabled: true}, keep_labels: [job, __replica__]", "keep_labels names __replica__, the ha replica_label"},
	}
	for _, tt := range tests {
		_, p := compileWith(t, DefaultDefaults(), "- {metric_name: x, type: counter, "+tt.rule+"}")
		if err := p.Err(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.rule, err, tt.want)
		}
	}
	d := DefaultDefaults()
	d.HA.ReplicaLabel, d.HA.FailoverTimeout = "9x", 0
	err := d.Validate()
	for _, want := range []string{`aggregator.ha.replica_label "9x" is not a valid label name`, "aggregator.ha.failover_timeout must be at least 1s"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want %q", err, want)
		}
	}
}

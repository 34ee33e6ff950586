package rules

import (
	"errors"
	"slices"
	"time"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// HAConfig is the aggregator's ha block: how the replicas of a Prometheus HA pair (two or
// more identical Prometheus servers that scrape the same targets and all remote-write) are
// told apart, so that a rule counts the samples of one elected replica per group and not
// the sum of all of them (docs/design.md §3.8). Every rule inherits it; a rule's own ha
// block overrides any of its keys.
type HAConfig struct {
	// Enabled turns the election on (default off).
	Enabled bool `yaml:"enabled"`
	// GroupLabel names the HA group, the set of replicas that scrape the same targets
	// (default cluster, as Mimir's HA tracker). A series without it is in the group "".
	GroupLabel string `yaml:"group_label"`
	// ReplicaLabel names the replica within its group (default __replica__). It never
	// reaches an output series; a series without it is aggregated as if ha were off.
	ReplicaLabel string `yaml:"replica_label"`
	// FailoverTimeout is how far the samples of another replica must run ahead of the
	// elected one's newest before that one is deemed gone and the other takes over
	// (default 30s).
	FailoverTimeout setting.Duration `yaml:"failover_timeout"`
}

// DefaultHA is the documented ha block: off, with Mimir's label names.
func DefaultHA() HAConfig {
	return HAConfig{GroupLabel: "cluster", ReplicaLabel: "__replica__", FailoverTimeout: setting.Duration(30 * time.Second)}
}

// MinFailoverTimeout is the shortest failover_timeout: a replica's samples are seconds apart.
const MinFailoverTimeout = time.Second

// RuleHAConfig is a rule's ha block: each key written overrides the aggregator's.
type RuleHAConfig struct {
	Enabled         *bool             `yaml:"enabled"`
	GroupLabel      *string           `yaml:"group_label"`
	ReplicaLabel    *string           `yaml:"replica_label"`
	FailoverTimeout *setting.Duration `yaml:"failover_timeout"`
}

// HA is a rule's compiled election settings; a rule without one aggregates every replica.
type HA struct {
	GroupLabel, ReplicaLabel string
	FailoverTimeout          time.Duration
}

// merge returns c with the keys written in o (nil: none) over it.
func (c HAConfig) merge(o *RuleHAConfig) HAConfig {
	if o == nil {
		return c
	}
	if o.Enabled != nil {
		c.Enabled = *o.Enabled
	}
	if o.GroupLabel != nil {
		c.GroupLabel = *o.GroupLabel
	}
	if o.ReplicaLabel != nil {
		c.ReplicaLabel = *o.ReplicaLabel
	}
	if o.FailoverTimeout != nil {
		c.FailoverTimeout = *o.FailoverTimeout
	}
	return c
}

// problems lists what is wrong with c, each as a *setting.Error at its key under prefix
// ("aggregator.ha." or "ha.").
func (c HAConfig) problems(prefix string) []error {
	var errs []error
	if !validLabelName(c.GroupLabel) {
		errs = append(errs, setting.At("ha", "group_label").Errorf("%sgroup_label %q is not a valid label name", prefix, c.GroupLabel))
	}
	switch {
	case !validLabelName(c.ReplicaLabel):
		errs = append(errs, setting.At("ha", "replica_label").Errorf("%sreplica_label %q is not a valid label name", prefix, c.ReplicaLabel))
	case c.ReplicaLabel == MetricNameLabel:
		errs = append(errs, setting.At("ha", "replica_label").Errorf("%sreplica_label cannot be %s", prefix, MetricNameLabel))
	case c.ReplicaLabel == c.GroupLabel:
		errs = append(errs, setting.At("ha", "replica_label").Errorf("%sreplica_label and group_label are both %q: a replica is told apart within its group by a label of its own", prefix, c.ReplicaLabel))
	}
	if time.Duration(c.FailoverTimeout) < MinFailoverTimeout {
		errs = append(errs, setting.At("ha", "failover_timeout").Errorf("%sfailover_timeout must be at least %s, not %s", prefix, setting.Duration(MinFailoverTimeout), c.FailoverTimeout))
	}
	return errs
}

// compileHA resolves the rule's election settings from its ha block and the aggregator's.
// The replica label never reaches an output, so a rule may not keep it by name.
func (s *ruleSource) compileHA(r *Rule, defaults Defaults, p *setting.Problems) {
	c := defaults.HA.merge(s.cfg.HA)
	if s.cfg.HA != nil {
		for _, se := range setting.Errors(errors.Join(c.problems("ha.")...)) {
			line := s.line("ha")
			if s.at.Written(se.Key) {
				line = s.at.Line(se.Key)
			}
			p.Errorf(s.at.File(), line, "%s", se.Msg)
		}
	}
	if !c.Enabled {
		return
	}
	if r.ByMode && slices.Contains(r.By, c.ReplicaLabel) {
		s.errorf(p, "keep_labels", "keep_labels names %s, the ha replica_label: the replica label never reaches an output series (the rule counts one replica per group)", c.ReplicaLabel)
	}
	r.HA = &HA{GroupLabel: c.GroupLabel, ReplicaLabel: c.ReplicaLabel, FailoverTimeout: time.Duration(c.FailoverTimeout)}
}

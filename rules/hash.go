package rules

import (
	"github.com/cespare/xxhash/v2"
	"gopkg.in/yaml.v3"
)

// configHash identifies the effective configuration: every setting after defaults, variable
// expansion and normalisation, and every rule from every file, but not comments, layout or
// line numbers. Secrets, which marshal redacted, are hashed separately so that a changed
// password still counts as a change.
func configHash(cfg *Config, srcs []*ruleSource) uint64 {
	effective := struct {
		Server     ServerConfig     `yaml:"server"`
		Aggregator AggregatorConfig `yaml:"aggregator"`
		Downstream DownstreamConfig `yaml:"downstream"`
		Rules      []RuleConfig     `yaml:"rules"`
	}{Server: cfg.Server, Aggregator: cfg.Aggregator, Downstream: cfg.Downstream}
	for _, s := range srcs {
		effective.Rules = append(effective.Rules, s.cfg)
	}
	d := xxhash.New()
	out, err := yaml.Marshal(effective)
	if err != nil { // cannot happen for these types; hash the error so the result still differs
		out = []byte(err.Error())
	}
	_, _ = d.Write(out)
	f := fingerprinter{d: d}
	for _, rw := range cfg.Downstream.RemoteWrite {
		f.str(string(rw.BearerToken))
		if rw.BasicAuth != nil {
			f.str(string(rw.BasicAuth.Password))
		}
	}
	for _, t := range cfg.Downstream.TimescaleDB {
		f.str(string(t.DSN))
	}
	return d.Sum64()
}

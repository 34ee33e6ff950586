package config

import (
	"encoding/binary"

	"github.com/cespare/xxhash/v2"
	"gopkg.in/yaml.v3"

	"github.com/cardinal-proxy/cardinal/config/setting"
	"github.com/cardinal-proxy/cardinal/explore"
	"github.com/cardinal-proxy/cardinal/hashring"
	"github.com/cardinal-proxy/cardinal/remotewrite"
	"github.com/cardinal-proxy/cardinal/rules"
	"github.com/cardinal-proxy/cardinal/wal"
)

// configHash identifies the effective configuration: every setting after defaults, variable
// expansion and normalisation, and every rule from every file, but not comments, layout or
// line numbers. Secrets, which marshal redacted, are hashed separately so that a changed
// password still counts as a change.
func configHash(cfg *Config, srcs []rules.Source) uint64 {
	effective := struct {
		Server     remotewrite.ServerConfig `yaml:"server"`
		Aggregator AggregatorSection        `yaml:"aggregator"`
		Downstream DownstreamSection        `yaml:"downstream"`
		Rules      []rules.RuleConfig       `yaml:"rules"`
		WAL        *wal.Config              `yaml:"wal"`
		Cluster    *hashring.Config         `yaml:"cluster"`
		Explore    explore.Config           `yaml:"explore"`
	}{Server: cfg.Server, Aggregator: cfg.Aggregator, Downstream: cfg.Downstream, WAL: cfg.WAL, Cluster: cfg.Cluster, Explore: cfg.Explore}
	for _, s := range srcs {
		effective.Rules = append(effective.Rules, s.Config)
	}
	d := xxhash.New()
	out, err := yaml.Marshal(effective)
	if err != nil { // cannot happen for these types; hash the error so the result still differs
		out = []byte(err.Error())
	}
	_, _ = d.Write(out)
	secret := func(s setting.Secret) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		_, _ = d.Write(n[:])
		_, _ = d.WriteString(string(s))
	}
	for _, rw := range cfg.Downstream.RemoteWrite {
		secret(rw.BearerToken)
		if rw.BasicAuth != nil {
			secret(rw.BasicAuth.Password)
		}
	}
	for _, t := range cfg.Downstream.TimescaleDB {
		secret(t.DSN)
	}
	return d.Sum64()
}

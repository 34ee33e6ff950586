package config

import (
	"github.com/cardinal-proxy/cardinal/aggregator"
	"github.com/cardinal-proxy/cardinal/downstream"
	"github.com/cardinal-proxy/cardinal/downstream/timescale"
	"github.com/cardinal-proxy/cardinal/explore"
	"github.com/cardinal-proxy/cardinal/hashring"
	"github.com/cardinal-proxy/cardinal/remotewrite"
	"github.com/cardinal-proxy/cardinal/rules"
	"github.com/cardinal-proxy/cardinal/wal"
)

// Config is cardinal's configuration file: the YAML schema (decoded strictly: an unknown key is
// an error) plus what loading derives from it. Each section is the Config type of the
// component it configures, which owns its defaults and its Validate. Obtain one with Load or
// Parse, which fill the defaults, resolve relative paths against the file's directory, load
// the rule files, validate every section and compile every rule; the fields then hold the
// effective values.
type Config struct {
	// Server is the remote-write receiver.
	Server remotewrite.ServerConfig `yaml:"server"`
	// Aggregator holds the defaults rules inherit and what happens to unmatched series.
	Aggregator AggregatorSection `yaml:"aggregator"`
	// RuleConfigs are the rules written inline in the config file, as written.
	RuleConfigs []rules.RuleConfig `yaml:"rules"`
	// RuleFiles are globs, relative to the config file's directory, of files holding a
	// top-level rules: list each.
	RuleFiles []string `yaml:"rule_files"`
	// Downstream is where aggregated (and forwarded) series are written.
	Downstream DownstreamSection `yaml:"downstream"`
	// WAL is the write-ahead log; nil when the section is absent (no WAL).
	WAL *wal.Config `yaml:"wal"`
	// Cluster makes this cardinal a member of a cluster of peers that route each output
	// series to one owner; nil when the section is absent (it runs alone).
	Cluster *hashring.Config `yaml:"cluster"`
	// Explore is the live cardinality explorer (on unless switched off).
	Explore explore.Config `yaml:"explore"`

	// Rules are the compiled rules: inline ones first, then each rule file's, in glob order.
	Rules []*rules.Rule `yaml:"-"`
	// Warnings are "file:line: message" notes about a valid configuration that probably
	// does not do what its author wants (check config prints them).
	Warnings []string `yaml:"-"`
	// Hash identifies the effective configuration (defaults filled, variables expanded, rule
	// files included; comments and layout do not count), so a reload can skip a file that
	// did not really change.
	Hash uint64 `yaml:"-"`
	// Files are the config file and every rule file loaded, for a watcher to watch.
	Files []string `yaml:"-"`
}

// AggregatorSection is the aggregator section: the aggregator's own settings plus
// downstream_url, the original design's shorthand for one remote-write downstream.
type AggregatorSection struct {
	aggregator.Config `yaml:",inline"`
	// DownstreamURL is shorthand for one downstream.remote_write entry with default settings;
	// after loading, that entry is part of Downstream.RemoteWrite, which is all a consumer
	// needs to read.
	DownstreamURL string `yaml:"downstream_url"`
}

// DownstreamSection lists where series are written. Every downstream has a unique Name after
// loading (given, or derived: the URL's host, "file", "timescaledb-N"), used in metrics.
type DownstreamSection struct {
	// RemoteWrite are Prometheus remote-write receivers (aggregator.downstream_url included).
	RemoteWrite []downstream.RemoteWriteConfig `yaml:"remote_write"`
	// File writes series in the Prometheus text format to a local file; nil when absent.
	File *downstream.FileConfig `yaml:"file"`
	// TimescaleDB are PostgreSQL / TimescaleDB databases.
	TimescaleDB []timescale.Config `yaml:"timescaledb"`
}

// Count is the number of downstreams configured.
func (d *DownstreamSection) Count() int {
	n := len(d.RemoteWrite) + len(d.TimescaleDB)
	if d.File != nil {
		n++
	}
	return n
}

// defaultConfig is what an empty file means; the decoder fills the keys present over it.
// Every default comes from the component that owns the section.
func defaultConfig() Config {
	return Config{
		Server:     remotewrite.DefaultServerConfig(),
		Aggregator: AggregatorSection{Config: aggregator.DefaultConfig()},
		Explore:    explore.DefaultConfig(),
	}
}

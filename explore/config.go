package explore

import (
	"errors"
	"time"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// Config is the explore section of the configuration: the live cardinality explorer.
type Config struct {
	// Enabled switches the explorer on (the default). Off, it costs nothing per request.
	Enabled bool `yaml:"enabled"`
	// ScanEvery is how often a scan starts (default 15m); between scans the explorer only
	// reads one flag per request. The first two scans run back to back at start-up.
	ScanEvery setting.Duration `yaml:"scan_every"`
	// ScanFor is how long a scan observes incoming series (default 2m). It must cover the
	// longest scrape interval of the agents, so that every active series is seen.
	ScanFor setting.Duration `yaml:"scan_for"`
	// MemoryBudget bounds the memory of one scan's sketches (default 64MiB). Past it, the
	// metrics with the fewest series lose their per-label detail and keep only their
	// counts, so the busiest metrics keep theirs whatever the churn.
	MemoryBudget setting.ByteSize `yaml:"memory_budget"`
}

// DefaultConfig is the explore section when the file has none.
func DefaultConfig() Config {
	return Config{
		Enabled:      true,
		ScanEvery:    setting.Duration(15 * time.Minute),
		ScanFor:      setting.Duration(2 * time.Minute),
		MemoryBudget: 64 << 20,
	}
}

// plainConfig has no methods, so decoding into it does not recurse.
type plainConfig Config

// UnmarshalYAML fills the defaults, then the keys present.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig()
	return unmarshal((*plainConfig)(c))
}

// minMemoryBudget leaves room for the sketches of one large metric.
const minMemoryBudget = 1 << 20

// Validate reports every problem of the section, each as a *setting.Error at its key.
func (c *Config) Validate() error {
	var p []error
	if c.ScanFor < setting.Duration(time.Second) {
		p = append(p, setting.At("scan_for").Errorf("explore.scan_for must be at least 1s, not %s", c.ScanFor))
	}
	if c.ScanEvery < c.ScanFor {
		p = append(p, setting.At("scan_every").Errorf("explore.scan_every (%s) must be at least explore.scan_for (%s)", c.ScanEvery, c.ScanFor))
	}
	if c.MemoryBudget < minMemoryBudget {
		p = append(p, setting.At("memory_budget").Errorf("explore.memory_budget must be at least 1MiB, not %d bytes", int64(c.MemoryBudget)))
	}
	return errors.Join(p...)
}

package aggregator

import (
	"errors"

	"github.com/cardinal-proxy/cardinal/config/setting"
	"github.com/cardinal-proxy/cardinal/rules"
)

// Unmatched says what happens to a series no rule selects.
type Unmatched string

// The two policies for unmatched series.
const (
	// UnmatchedForward writes unmatched series downstream unchanged (the default).
	UnmatchedForward Unmatched = "forward"
	// UnmatchedDrop discards them.
	UnmatchedDrop Unmatched = "drop"
)

// Config is the aggregator section of the config file: the defaults every rule inherits and
// the policy for series no rule selects.
type Config struct {
	rules.Defaults `yaml:",inline"`
	// Unmatched is forward (default) or drop.
	Unmatched Unmatched `yaml:"unmatched"`
}

// DefaultConfig is what an absent aggregator section means.
func DefaultConfig() Config {
	return Config{Defaults: rules.DefaultDefaults(), Unmatched: UnmatchedForward}
}

// ForwardUnmatched reports whether unmatched series are written downstream.
func (c *Config) ForwardUnmatched() bool { return c.Unmatched != UnmatchedDrop }

// Validate reports every problem of the section, each as a *setting.Error at its key.
func (c *Config) Validate() error {
	errs := []error{c.Defaults.Validate()}
	if c.Unmatched != UnmatchedForward && c.Unmatched != UnmatchedDrop {
		errs = append(errs, setting.At("unmatched").Errorf("aggregator.unmatched must be forward or drop, not %q", string(c.Unmatched)))
	}
	return errors.Join(errs...)
}

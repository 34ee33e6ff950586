package aggregator

import (
	"errors"
	"time"

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
	// WarnUnmatchedAfter is how long a rule may go without input series before a warning
	// (logged once, and on the status page) says that it matches nothing; 0 never warns.
	WarnUnmatchedAfter setting.Duration `yaml:"warn_unmatched_after"`
}

// DefaultWarnUnmatchedAfter is the default of warn_unmatched_after.
const DefaultWarnUnmatchedAfter = 10 * time.Minute

// DefaultConfig is what an absent aggregator section means.
func DefaultConfig() Config {
	return Config{Defaults: rules.DefaultDefaults(), Unmatched: UnmatchedForward, WarnUnmatchedAfter: setting.Duration(DefaultWarnUnmatchedAfter)}
}

// ForwardUnmatched reports whether unmatched series are written downstream.
func (c *Config) ForwardUnmatched() bool { return c.Unmatched != UnmatchedDrop }

// Validate reports every problem of the section, each as a *setting.Error at its key.
func (c *Config) Validate() error {
	errs := []error{c.Defaults.Validate()}
	if c.Unmatched != UnmatchedForward && c.Unmatched != UnmatchedDrop {
		errs = append(errs, setting.At("unmatched").Errorf("aggregator.unmatched must be forward or drop, not %q", string(c.Unmatched)))
	}
	if w := c.WarnUnmatchedAfter; w != 0 && w < c.FlushInterval {
		errs = append(errs, setting.At("warn_unmatched_after").Errorf("aggregator.warn_unmatched_after %s is shorter than flush_interval %s: write 0 to never warn, or a longer time (default %s)", w, c.FlushInterval, setting.Duration(DefaultWarnUnmatchedAfter)))
	}
	return errors.Join(errs...)
}

package rules

import (
	"errors"
	"time"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// MinInterval is the shortest window a rule may have.
const MinInterval = time.Second

// Defaults are what a rule inherits when it does not set its own timing (the flush_interval,
// flush_delay and staleness keys of the aggregator section).
type Defaults struct {
	// FlushInterval is the default window length of rules (default 15s).
	FlushInterval setting.Duration `yaml:"flush_interval"`
	// FlushDelay is the default time a window stays open after its end for late samples
	// (default 10s); a rule's inherited delay is cut to its interval when longer.
	FlushDelay setting.Duration `yaml:"flush_delay"`
	// Staleness is the default time an input series lives without samples (default 5m,
	// Prometheus's lookback).
	Staleness setting.Duration `yaml:"staleness"`
	// HA is the election of one replica per Prometheus HA group (off by default).
	HA HAConfig `yaml:"ha"`
}

// DefaultDefaults are the documented rule defaults (docs/design.md §3.2, §3.6).
func DefaultDefaults() Defaults {
	return Defaults{
		FlushInterval: setting.Duration(15 * time.Second),
		FlushDelay:    setting.Duration(10 * time.Second),
		Staleness:     setting.Duration(5 * time.Minute),
		HA:            DefaultHA(),
	}
}

// Validate reports every problem of the defaults, each as a *setting.Error at its key.
func (d *Defaults) Validate() error {
	var errs []error
	if time.Duration(d.FlushInterval) < MinInterval {
		errs = append(errs, setting.At("flush_interval").Errorf("aggregator.flush_interval must be at least %s, not %s", setting.Duration(MinInterval), d.FlushInterval))
	}
	if d.FlushDelay > d.FlushInterval {
		errs = append(errs, setting.At("flush_delay").Errorf("aggregator.flush_delay %s is longer than flush_interval %s: a window must close before the next one ends", d.FlushDelay, d.FlushInterval))
	}
	if d.Staleness <= 0 {
		errs = append(errs, setting.At("staleness").Errorf("aggregator.staleness must be more than 0 (it is how long an input series lives without samples)"))
	}
	errs = append(errs, d.HA.problems("aggregator.ha.")...)
	return errors.Join(errs...)
}

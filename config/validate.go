package config

import "github.com/cardinal-proxy/cardinal/config/setting"

// validator is what every section's component type offers: its own Validate, reporting
// *setting.Error values at keys inside the section.
type validator interface{ Validate() error }

// validate runs v's Validate and records each problem at the line of its key in the section.
func (pl place) validate(v validator) {
	for _, e := range setting.Errors(v.Validate()) {
		pl.sub(e.Key...).errorf("", "%s", e.Msg)
	}
}

// checkFiles reports what v's CheckFiles finds, each problem at its key under pl.
func (pl place) checkFiles(v interface{ CheckFiles() error }) {
	for _, e := range setting.Errors(v.CheckFiles()) {
		pl.sub(e.Key...).errorf("", "%s", e.Msg)
	}
}

// validateAggregator checks the aggregator section. A flush_delay left at its default is cut
// to a shorter flush_interval; one written explicitly must fit.
func validateAggregator(c *AggregatorSection, at place) {
	if c.FlushDelay > c.FlushInterval && !at.has("flush_delay") {
		c.FlushDelay = c.FlushInterval
	}
	at.validate(&c.Config)
}

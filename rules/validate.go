package rules

import (
	"net"
	"time"
)

// validateServer checks the server section.
func validateServer(c *ServerConfig, at place) {
	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		at.errorf("listen_addr", "server.listen_addr %q is not host:port (write \":9091\" for every interface, \"127.0.0.1:9091\" for this host only)", c.ListenAddr)
	}
	if c.MaxRequestBytes <= 0 {
		at.errorf("max_request_bytes", "server.max_request_bytes must be more than 0")
	}
}

// validateAggregator checks the rule defaults. A flush_delay left at its default is cut to
// a shorter flush_interval; one written explicitly must fit.
func validateAggregator(c *AggregatorConfig, at place) {
	if time.Duration(c.FlushInterval) < minInterval {
		at.errorf("flush_interval", "aggregator.flush_interval must be at least %s, not %s", Duration(minInterval), c.FlushInterval)
	}
	if c.FlushDelay > c.FlushInterval {
		if at.has("flush_delay") {
			at.errorf("flush_delay", "aggregator.flush_delay %s is longer than flush_interval %s: a window must close before the next one ends", c.FlushDelay, c.FlushInterval)
		}
		c.FlushDelay = c.FlushInterval
	}
	if c.Staleness <= 0 {
		at.errorf("staleness", "aggregator.staleness must be more than 0 (it is how long an input series lives without samples)")
	}
	if c.Unmatched != UnmatchedForward && c.Unmatched != UnmatchedDrop {
		at.errorf("unmatched", "aggregator.unmatched must be forward or drop, not %q", string(c.Unmatched))
	}
}

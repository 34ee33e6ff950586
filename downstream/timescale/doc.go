// Package timescale is cardinal's PostgreSQL / TimescaleDB sink: it owns the SQL schema and
// its versioned migrations, detects at start-up whether TimescaleDB is there (hypertable) or
// not (native daily range partitions), manages the hypertable's compression and retention
// policies (leaving their jobs' tuning to the operator) and watches those jobs' health, and
// writes flushed series in idempotent batches.
// It knows nothing of remote write or of how the series were aggregated: it takes whatever
// the aggregator's flusher hands to Send.
package timescale

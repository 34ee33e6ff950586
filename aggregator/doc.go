// Package aggregator owns cardinal's aggregation state: per-input and per-output series
// state, event-time windows aligned to the epoch, the output kinds (one file each), the 256
// lock shards, flushing closed windows, staleness and per-rule limits. It receives decoded
// series and writes output series to a Sink; it knows nothing of wire formats or SQL.
//
// The semantics are those of docs/design.md §3: a window k of a rule with interval i holds the
// samples whose own timestamps fall in ((k-1)·i, k·i], and its outputs are stamped k·i.
package aggregator

// Package explore is cardinal's live cardinality explorer: it watches the series agents send,
// matched by a rule or not, before anything is stored, and estimates for every metric name
// its active series and samples per second, each label's distinct values and how many series
// would remain if the label were dropped (alone, and together with the labels ranked above
// it). The suggest command turns those estimates into rules.
//
// The explorer works in scans (docs/design.md §9): for scan_for out of every scan_every
// it reads every incoming series once, through a filter that lets each series through once
// per scan; between scans a request costs one atomic load. Distinct counts come from
// HyperLogLog sketches (github.com/axiomhq/hyperloglog), whose sparse form is exact for small
// counts and whose dense form errs by about 0.8%. The sketches of one scan stay within a
// memory budget: past it, the metrics with the fewest series keep only their counts.
package explore

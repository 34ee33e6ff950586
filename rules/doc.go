// Package rules owns cardinal's configuration: the YAML schema (server, aggregator, rules,
// rule files, downstreams), `${VAR}` expansion, strict parsing with file:line errors,
// validation and warnings, and the compiled rules (selectors, grouping, output naming,
// fingerprints) the aggregator runs. It knows nothing of HTTP, storage or aggregation state.
package rules

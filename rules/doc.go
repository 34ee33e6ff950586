// Package rules owns cardinal's configuration: the YAML schema (server, aggregator, rules,
// rule files, downstreams, WAL, cluster), strict parsing with file:line errors, validation,
// compiled selectors and the rule Set the router looks series up in. It knows nothing of HTTP
// or aggregation state.
package rules

// Package ruletest runs unit tests for cardinal rules, in the spirit of `promtool test
// rules`: input series in Prometheus's expanding notation are fed through a real aggregator
// with synthetic timestamps, and the output series are compared with the expected values.
package ruletest

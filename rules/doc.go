// Package rules owns what an aggregation rule is: the rule as written (RuleConfig) and the
// defaults it inherits, its validation and compilation into a Rule (selector, grouping,
// outputs, timing), rule and output naming, collision warnings and the fingerprint a reload
// compares. Files are named for what they compile (compile_*.go) or name (rulename.go,
// outputname.go, validname.go). Where a rule is written is asked of a Locator: decoding
// the file is package config's; matching series and keeping state are the aggregator's.
package rules

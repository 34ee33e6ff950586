// Package config owns cardinal's configuration file: strict YAML decoding with file:line
// errors and key suggestions, ${VAR} expansion, rule files and globs, and the composition of
// the sections, each of which is the Config type of the component it configures
// (remotewrite, aggregator, rules, downstream). Each section is checked by that type's own
// Validate, so `cardinal check config` and start-up refuse exactly the same files.
package config

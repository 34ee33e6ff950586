// Package setting holds what every component's configuration is made of: the value types a
// YAML file writes (Duration, ByteSize, Secret, Limit) and Error, a problem with one setting
// named by its key path. Components define their own Config, defaults and Validate with these;
// package config decodes the file and turns each Error's key path into file:line.
package setting

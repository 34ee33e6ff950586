// Package e2e holds cardinal's end-to-end tests. They run real binaries (cardinal built from
// this tree, Prometheus as downstream or agent, node_exporter) as child processes on free
// loopback ports in per-test temp dirs, push or scrape real traffic, and check the result
// through Prometheus's HTTP API. Everything here is in _test.go files; a test whose binary is
// missing is skipped locally and fails under CI=true; under -short every test here is skipped.
package e2e

// Package deploytest checks what deploy/ ships against the real thing: the alerting rules
// with promtool, the Grafana dashboard's queries against the metrics a running cardinal
// exports, and the Kubernetes manifests rendered as `kubectl kustomize` would and decoded
// strictly into the Kubernetes API types.
//
// It is a module of its own so that kustomize and k8s.io/api never reach cardinal's go.mod;
// `go test ./...` at the repository root does not descend into it, `make test` runs it.
package deploytest

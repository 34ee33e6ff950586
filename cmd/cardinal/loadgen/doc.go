// Package loadgen is cardinal's own remote-write load generator (`cardinal loadgen ...`).
// It lays out a synthetic series set (metrics × series per metric, counter/gauge/histogram
// mix, churn), encodes every request body before the clock starts, then sends Remote Write 1.0
// requests at a target rate and reports throughput, latency, errors and the receiver's CPU and
// memory. It knows nothing of cardinal's internals: it only speaks the wire protocol.
package loadgen

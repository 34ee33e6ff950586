// Package remotewrite owns the Prometheus Remote Write 1.0 wire protocol: decoding request
// bodies without allocating (Decoder), validating series, the HTTP receiver and its
// status-code contract (Handler), and encoding (Encoder), which package downstream's sender
// uses.
//
// It knows nothing about rules, aggregation state or sinks: decoded requests go to an
// Appender.
package remotewrite

// Package remotewrite owns the Prometheus Remote Write 1.0 wire protocol in both directions:
// decoding request bodies without allocating (Decoder), validating series, the HTTP receiver
// and its status-code contract (Handler), encoding (Encoder) and the sender with batching,
// retries and a byte-bounded queue (Client).
//
// It knows nothing about rules or aggregation state: decoded requests go to an Appender, and
// series to send arrive through Client.Send.
package remotewrite

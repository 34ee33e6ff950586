// Package downstream owns what a sink is: the Sink interface and the Fanout that shares each
// flush among sinks, the configuration of each sink, the remote-write sender (RemoteWrite),
// the file sink (File), and what every sink shares: one byte-bounded Queue with one overflow
// policy, and one Backoff. The PostgreSQL sink is its subpackage timescale.
//
// It leaves the wire format to package remotewrite (whose Encoder the sender uses) and knows
// nothing of rules or aggregation: it sends whatever is handed to Send.
package downstream

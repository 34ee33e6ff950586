package hashring

import "time"

// Stats is what a Membership has done, for the server's metrics: counters only grow.
type Stats struct {
	// Rounds counts refresh rounds, FailedRounds those in which a source failed or that were
	// cut short (and so nothing changed).
	Rounds, FailedRounds uint64
	// Probes counts identity probes; ProbeFailures those without an answer (an error, a
	// timeout, a bad status or body), NotReady those answered not ready, and
	// NameMismatches those in which a peer listed as name=host:port answered another name,
	// and NameCollisions those answered with this member's name by another process
	// (Identity.Instance).
	Probes, ProbeFailures, NotReady, NameMismatches, NameCollisions uint64
	// SkippedRecords counts the records discoveries left out as unusable (SkippedRecords).
	SkippedRecords uint64
	// Joins, Leaves and AddressChanges count changes of the members.
	Joins, Leaves, AddressChanges uint64
	// Members is the number of members, self included; Candidates the number of peers seen
	// ready that have not joined yet.
	Members, Candidates int
	// RingVersion is the current ring's VersionString.
	RingVersion string
	// LastSuccess is the time of the latest successful round; zero before the first.
	LastSuccess time.Time
}

// Package wal owns cardinal's durable log: accepted request bodies appended as opaque,
// CRC32C-framed entries (with group commit under fsync: always), torn tails repaired on open,
// replay from an index, truncation at the front, and state checkpoints written atomically next
// to the log. What an entry or a checkpoint means, and when to checkpoint or truncate, is left
// to its callers. Segments are stored with github.com/tidwall/wal.
package wal

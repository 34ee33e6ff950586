package timescale

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// querier is what the schema code needs from a pool, a connection or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// beginner starts transactions; *pgxpool.Pool and *pgx.Conn both are.
type beginner interface {
	querier
	Begin(ctx context.Context) (pgx.Tx, error)
}

// ddlLockKey is the pg_advisory_xact_lock key that serialises cardinal's schema changes
// (migrations, TimescaleDB policies, partition creation and retention) across instances that
// share a database. It is "cardinal" in ASCII.
const ddlLockKey int64 = 0x63617264696e616c

// inDDLTransaction runs fn in a transaction holding the DDL advisory lock, so two cardinal
// instances never change the schema at the same time.
func inDDLTransaction(ctx context.Context, db beginner, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", ddlLockKey); err != nil {
			return err
		}
		return fn(tx)
	})
}

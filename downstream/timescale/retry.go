package timescale

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// SQLSTATE codes the writer branches on.
const (
	sqlstateCheckViolation = "23514" // also "no partition of relation found for row"
	sqlstateUndefinedTable = "42P01"
	sqlstateProgramLimit   = "54000"
)

// isPermanent reports whether retrying err cannot help because the data itself is
// unacceptable: data exceptions (class 22), integrity violations (class 23) other than a
// missing partition, statements over a server limit, and features the server lacks (class
// 0A, e.g. ON CONFLICT into compressed chunks on TimescaleDB before 2.11). Everything else (connection trouble,
// a server shutting down, missing privileges or tables, deadlocks) is retried with backoff:
// the queue fills, the receiver answers 503, and the agents keep the data until it is fixed.
func isPermanent(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch {
	case pgErr.Code == sqlstateCheckViolation:
		return false
	case pgErr.Code == sqlstateProgramLimit:
		return true
	case len(pgErr.Code) == 5 && (pgErr.Code[:2] == "22" || pgErr.Code[:2] == "23" || pgErr.Code[:2] == "0A"):
		return true
	}
	return false
}

// hasSQLState reports whether err is a server error with the given SQLSTATE.
func hasSQLState(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

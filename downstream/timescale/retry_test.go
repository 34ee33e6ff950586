package timescale

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestIsPermanent(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("writing: %w", &pgconn.PgError{Code: code}) }
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"connection_refused_is_retried", errors.New("dial tcp 127.0.0.1:5432: connect: connection refused"), false},
		{"server_shutting_down_is_retried", pg("57P01"), false},
		{"cannot_connect_now_is_retried", pg("57P03"), false},
		{"deadlock_is_retried", pg("40P01"), false},
		{"missing_table_is_retried", pg(sqlstateUndefinedTable), false},
		{"missing_privilege_is_retried", pg("42501"), false},
		{"missing_partition_is_retried", pg(sqlstateCheckViolation), false},
		{"disk_full_is_retried", pg("53100"), false},
		{"bad_data_is_dropped", pg("22P05"), true},
		{"not_null_violation_is_dropped", pg("23502"), true},
		{"statement_over_a_server_limit_is_dropped", pg(sqlstateProgramLimit), true},
		{"unsupported_feature_is_dropped", pg("0A000"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isPermanent(tt.err); got != tt.want {
				t.Errorf("isPermanent(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

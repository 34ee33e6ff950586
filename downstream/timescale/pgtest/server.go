package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// superuser is the role initdb creates; it logs in without a password (trust).
	superuser = "postgres"
	// readyTimeout bounds how long a starting server may take to accept connections.
	readyTimeout = 60 * time.Second
	// stopTimeout bounds a fast shutdown before the server is killed.
	stopTimeout = 60 * time.Second
	// pollInterval is how often a starting server is tried.
	pollInterval = 20 * time.Millisecond
	// logTailBytes is how much of the server log a failed test prints.
	logTailBytes = 16 << 10
	// portAttempts is how many free ports the first start tries: another process may take
	// the port between choosing and binding it.
	portAttempts = 3
)

// Server is a PostgreSQL server owned by one test. Its data directory, log and Unix socket
// live in a temporary directory of its own; it listens on 127.0.0.1 only, and the superuser
// postgres logs in without a password. It is stopped and removed when the test ends.
//
// Start and Stop report failures to the test given to the package-level Start, so call them
// from that test's goroutine.
type Server struct {
	tb       testing.TB
	bin      string              // directory of initdb and postgres
	dir      string              // holds data/, the socket, postgres.log; owned by the server's user
	port     int                 // TCP port on 127.0.0.1, the same across restarts
	cred     *syscall.Credential // the postgres system user when the test runs as root
	settings []string            // -c name=value arguments

	lifecycle sync.Mutex // serialises Start and Stop
	mu        sync.Mutex // guards the fields below, also written by the wait goroutine
	cmd       *exec.Cmd
	exited    chan struct{} // closed when the current run has exited
	exitErr   error         // of the last run that exited
}

// Start initialises a new database cluster (initdb, UTF-8, locale C) and starts a server on
// it, waiting until it accepts connections. The server runs as a child of the test process
// (killed with it, should the test binary die before its clean-ups) and as the postgres
// system user when the test runs as root, since PostgreSQL refuses to run as root.
//
// With the option TimescaleDB the server preloads TimescaleDB. When the binaries cannot be
// found (PATH, then /usr/lib/postgresql/*/bin), TimescaleDB is asked for and not installed,
// or there is no postgres user to run them as root, the test is skipped, or fails when the
// environment variable CI is "true". Under -short it is skipped: starting a server is not a unit test.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	if testing.Short() {
		tb.Skip("pgtest: -short: not starting a PostgreSQL server")
	}
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	bin := findBinDir()
	if bin == "" {
		cannotRun(tb, "PostgreSQL server binaries (initdb, postgres) not found in PATH or /usr/lib/postgresql/*/bin", installHint)
	}
	if cfg.timescaledb {
		if missing := timescaleDBMissing(bin); missing != "" {
			cannotRun(tb, missing, installTimescaleDBHint)
		}
	}
	s := &Server{tb: tb, bin: bin, settings: cfg.serverArgs()}
	if os.Geteuid() == 0 {
		u, err := user.Lookup(superuser)
		if err != nil {
			cannotRun(tb, "the tests run as root, and there is no postgres system user to run the server as", installHint)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	}
	// Not t.TempDir: its parent directories are private to the test's user, and the server
	// may run as another.
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	if s.cred != nil {
		if err := os.Chown(dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			tb.Fatalf("pgtest: %v", err)
		}
	}
	s.dir = dir
	initdb := s.command("initdb", "-D", s.dataDir(), "-U", superuser, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		tb.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	tb.Cleanup(func() {
		if err := s.stop(); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
		if tb.Failed() {
			tb.Logf("--- PostgreSQL log (%s), tail ---\n%s", s.logPath(), s.logTail())
		}
	})

	for attempt := 1; ; attempt++ {
		s.port = freePort(tb)
		err := s.launch()
		if err == nil {
			return s
		}
		if attempt == portAttempts {
			tb.Fatalf("pgtest: starting PostgreSQL: %v\n%s", err, s.logTail())
		}
	}
}

// DSN is the connection string (URL form) of the database postgres as the superuser.
func (s *Server) DSN() string { return s.databaseDSN("postgres") }

// Addr is the server's TCP address, 127.0.0.1:port; it stays the same across Stop and Start.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// CreateDatabase creates an empty database and returns its DSN; a failure fails tb, which may
// be a subtest of the one that started the server.
func (s *Server) CreateDatabase(tb testing.TB, name string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN())
	if err != nil {
		tb.Fatalf("pgtest: creating database %q: %v", name, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatalf("pgtest: creating database %q: %v", name, err)
	}
	return s.databaseDSN(name)
}

// Stop shuts the server down in fast mode (clients are disconnected, committed data is kept)
// and waits for it to exit. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.tb.Helper()
	if err := s.stop(); err != nil {
		s.tb.Fatalf("pgtest: %v", err)
	}
}

// Start starts the server again after Stop, on the same data directory and port, and waits
// until it accepts connections.
func (s *Server) Start() {
	s.tb.Helper()
	if s.running() {
		s.tb.Fatal("pgtest: Start while the server is running")
	}
	if err := s.launch(); err != nil {
		s.tb.Fatalf("pgtest: restarting PostgreSQL: %v\n%s", err, s.logTail())
	}
}

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }
func (s *Server) logPath() string { return filepath.Join(s.dir, "postgres.log") }

func (s *Server) databaseDSN(db string) string {
	u := url.URL{Scheme: "postgres", User: url.User(superuser), Host: s.Addr(), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// command prepares one of the server programs, run in the server's directory as its user,
// without the caller's PG* environment variables (PGDATA, PGPORT... would override ours).
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.Env = []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	return cmd
}

// launch runs postgres in the foreground as a child process and waits until it accepts
// connections; a server that exits or does not become ready in time is an error.
func (s *Server) launch() error {
	s.lifecycle.Lock()
	defer s.lifecycle.Unlock()
	logFile, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own descriptor
	args := append([]string{"-D", s.dataDir(), "-p", strconv.Itoa(s.port), "-k", s.dir,
		"-c", "listen_addresses=127.0.0.1"}, s.settings...)
	cmd := s.command("postgres", args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The server dies with the test binary, even when a time-out panic skips the clean-ups.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.exited, s.exitErr = cmd, exited, nil
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.exitErr = err
		s.mu.Unlock()
		close(exited)
	}()
	if err := s.waitReady(exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		s.mu.Lock()
		s.cmd = nil
		s.mu.Unlock()
		return err
	}
	return nil
}

// waitReady polls the server with a connection until one succeeds.
func (s *Server) waitReady(exited <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgconn.Connect(ctx, s.DSN())
		if err == nil {
			conn.Close(ctx)
			cancel()
			return nil
		}
		cancel()
		select {
		case <-exited:
			s.mu.Lock()
			defer s.mu.Unlock()
			return fmt.Errorf("postgres exited before accepting connections: %v", s.exitErr)
		case <-ticker.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not accepting connections after %s: %v", readyTimeout, err)
		}
	}
}

// stop shuts the server down (SIGINT: fast shutdown), killing it after stopTimeout. It
// reports a server that had died on its own or did not stop in time.
func (s *Server) stop() error {
	s.lifecycle.Lock()
	defer s.lifecycle.Unlock()
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		s.mu.Lock()
		defer s.mu.Unlock()
		return fmt.Errorf("postgres had exited on its own: %v", s.exitErr)
	default:
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stopping postgres: %w", err)
	}
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("postgres did not stop within %s of SIGINT and was killed", stopTimeout)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exitErr != nil {
		return fmt.Errorf("postgres shut down with %v", s.exitErr)
	}
	return nil
}

// running reports whether the server has been started and has not exited.
func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// logTail is the end of the server log, for failure messages.
func (s *Server) logTail() string {
	b, err := os.ReadFile(s.logPath())
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(b) > logTailBytes {
		b = b[len(b)-logTailBytes:]
	}
	return string(b)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("pgtest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

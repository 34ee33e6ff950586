package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// readyTimeout bounds how long a started process may take to report ready.
	readyTimeout = 60 * time.Second
	// stopTimeout bounds a graceful stop before the process is killed.
	stopTimeout = 30 * time.Second
	// pollInterval is how often bounded polls look again.
	pollInterval = 50 * time.Millisecond
	// logTailBytes is how much of a process log is printed when a test fails.
	logTailBytes = 64 << 10
)

// TestMain gives the test binary a scratch directory that outlives single tests (the cardinal
// binary is built there once) and removes it at the end.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cardinal-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	cardinalBuild.dir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// inCI reports whether missing binaries must fail the tests rather than skip them.
func inCI() bool { return os.Getenv("CI") == "true" }

// requireBinary returns the path of an executable from PATH; a missing one skips the test
// locally and fails it under CI=true. Every process a test starts (cardinal built with go,
// Prometheus, node_exporter) is found here, so under -short, which runs unit tests only, it
// skips the test before anything is built or started. (PostgreSQL is started by
// timescale/pgtest, which skips under -short too.)
func requireBinary(t testing.TB, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short runs unit tests only: this end-to-end test needs the %s binary (make test runs it)", name)
	}
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	missingBinary(t, fmt.Sprintf("%s not found in PATH (%v): install it (Debian: apt-get install prometheus prometheus-node-exporter) to run this test", name, err))
	return ""
}

// missingBinary skips the test for a binary it cannot find, saying msg, or fails it under
// CI=true, where every binary must be there.
func missingBinary(t testing.TB, msg string) {
	t.Helper()
	if inCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// eventually polls cond every pollInterval until it returns true, and fails the test if
// that has not happened within timeout. cond's error, if any, is reported on time-out.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s (last error: %v)", what, timeout, last)
		}
		<-ticker.C
	}
}

// process is one child binary of a test. It writes stdout and stderr to a log file in the
// test's temp dir, which is printed (its tail) when the test fails. It can be stopped and
// started again with the same arguments, and is stopped when the test ends.
type process struct {
	t       testing.TB
	name    string
	bin     string
	args    []string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current run has exited
	state  *os.ProcessState
}

// newProcess prepares (without starting) a child process logging to dir/name.log.
func newProcess(t testing.TB, dir, name, bin string, args ...string) *process {
	p := &process{t: t, name: name, bin: bin, args: args, logPath: filepath.Join(dir, name+".log")}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("--- %s log (%s), tail ---\n%s", name, p.logPath, p.logTail(logTailBytes))
		}
	})
	return p
}

// start runs the process; the log is appended to, so a restart keeps the earlier output.
func (p *process) start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !p.hasExited() {
		p.t.Fatalf("%s: start while running", p.name)
	}
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "=== %s %s %s\n", time.Now().Format(time.RFC3339Nano), p.bin, strings.Join(p.args, " "))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The child dies with the test binary even if the test is killed before its cleanups run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("%s: start %s: %v", p.name, p.bin, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited, p.state = cmd, exited, nil
	go func() {
		_ = cmd.Wait()
		p.mu.Lock()
		p.state = cmd.ProcessState
		p.mu.Unlock()
		close(exited)
	}()
}

// hasExited reports whether the current run has exited.
func (p *process) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// running reports whether the process has been started and has not exited.
func (p *process) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !p.hasExited()
}

// pid is the process id of the current run.
func (p *process) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// signal sends sig to the running process.
func (p *process) signal(sig os.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.hasExited() {
		return fmt.Errorf("%s is not running", p.name)
	}
	return p.cmd.Process.Signal(sig)
}

// stop sends SIGTERM, waits up to stopTimeout, then kills. It returns the exit code (-1 if
// the process ended by a signal, as after the kill), and is a no-op returning the earlier
// exit code if the process is not running.
func (p *process) stop() int {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return -1
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Logf("%s: SIGTERM: %v", p.name, err)
	}
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		p.t.Errorf("%s did not exit within %s of SIGTERM: killing it", p.name, stopTimeout)
		_ = cmd.Process.Kill()
		<-exited
	}
	return p.exitCode()
}

// wait waits up to timeout for the process to exit by itself and returns its exit code.
func (p *process) wait(timeout time.Duration) (int, error) {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	if exited == nil {
		return -1, fmt.Errorf("%s was never started", p.name)
	}
	select {
	case <-exited:
		return p.exitCode(), nil
	case <-time.After(timeout):
		return -1, fmt.Errorf("%s still running after %s", p.name, timeout)
	}
}

// exitCode is the exit code of the last run that exited (-1 if killed by a signal).
func (p *process) exitCode() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == nil {
		return -1
	}
	return p.state.ExitCode()
}

// logTail returns the last n bytes of the log.
func (p *process) logTail(n int64) string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	off := max(0, info.Size()-n)
	buf := make([]byte, info.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return err.Error()
	}
	return string(buf)
}

// log returns the whole log, for tests that assert on what a process printed.
func (p *process) log() string { return p.logTail(1 << 30) }

// waitHTTP200 polls url until it answers 200, failing early (with the log) if the process
// exits meanwhile.
func (p *process) waitHTTP200(url string) {
	p.t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	eventually(p.t, readyTimeout, p.name+" ready at "+url, func() (bool, error) {
		if !p.running() {
			p.t.Fatalf("%s exited (code %d) before becoming ready; log:\n%s", p.name, p.exitCode(), p.logTail(logTailBytes))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Errorf("status %d", resp.StatusCode)
	})
}

// keys lists the keys of a query result, for failure messages.
func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

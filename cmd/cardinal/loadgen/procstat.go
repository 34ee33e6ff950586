package loadgen

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicksPerSecond is USER_HZ, the unit of utime and stime in /proc/PID/stat on Linux.
const clockTicksPerSecond = 100

// procUsage is what /proc says about the receiver process at one moment.
type procUsage struct {
	cpuSeconds   float64 // user + system CPU time since the process started
	rssBytes     int64   // resident set size now (VmRSS)
	peakRSSBytes int64   // peak resident set size (VmHWM)
}

// readProcUsage reads the CPU time and memory of process pid from procRoot (normally /proc).
func readProcUsage(procRoot string, pid int) (procUsage, error) {
	dir := procRoot + "/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return procUsage{}, fmt.Errorf("receiver pid %d: %w", pid, err)
	}
	// The command name (field 2) is parenthesised and may contain spaces: fields after the
	// last ')' start at field 3 (state); utime and stime are fields 14 and 15.
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return procUsage{}, fmt.Errorf("receiver pid %d: malformed stat", pid)
	}
	fields := strings.Fields(string(stat[end+1:]))
	if len(fields) < 13 {
		return procUsage{}, fmt.Errorf("receiver pid %d: stat has %d fields after the name", pid, len(fields))
	}
	utime, err1 := strconv.ParseUint(fields[11], 10, 64)
	stime, err2 := strconv.ParseUint(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return procUsage{}, fmt.Errorf("receiver pid %d: bad utime/stime %q %q", pid, fields[11], fields[12])
	}
	u := procUsage{cpuSeconds: float64(utime+stime) / clockTicksPerSecond}
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return procUsage{}, fmt.Errorf("receiver pid %d: %w", pid, err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		key, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch key {
		case "VmRSS":
			u.rssBytes = parseKB(rest)
		case "VmHWM":
			u.peakRSSBytes = parseKB(rest)
		}
	}
	return u, nil
}

// parseKB parses a /proc/PID/status size such as "  1234 kB" into bytes.
func parseKB(s string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(s), " kB"), 10, 64)
	return n * 1024
}

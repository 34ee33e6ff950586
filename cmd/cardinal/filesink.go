package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/prometheus/prompb"
)

// fileSink writes output samples in the Prometheus text exposition format (with
// timestamps), one line per sample, to a file or stdout. It lets `make run` show what
// cardinal does with no other software installed. Stale markers are written as comments.
type fileSink struct {
	mu     sync.Mutex
	w      *bufio.Writer
	closer io.Closer
	logger *slog.Logger
}

// newFileSink opens path for appending ("-" is stdout).
func newFileSink(path string, logger *slog.Logger) (*fileSink, error) {
	if path == "-" || path == "" {
		return &fileSink{w: bufio.NewWriter(os.Stdout), logger: logger}, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("file downstream: %w", err)
	}
	return &fileSink{w: bufio.NewWriter(f), closer: f, logger: logger}, nil
}

// Send writes the series and flushes, so a reader sees whole flushes.
func (s *fileSink) Send(series []prompb.TimeSeries) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ts := range series {
		for _, smp := range ts.Samples {
			writeSample(s.w, ts.Labels, smp)
		}
	}
	if err := s.w.Flush(); err != nil {
		s.logger.Error("file downstream write failed", "err", err)
	}
}

// writeSample writes one `name{labels} value timestamp` line.
func writeSample(w *bufio.Writer, ls []prompb.Label, smp prompb.Sample) {
	if math.Float64bits(smp.Value) == 0x7ff0000000000002 {
		w.WriteString("# stale ")
	}
	name := ""
	for _, l := range ls {
		if l.Name == "__name__" {
			name = l.Value
		}
	}
	w.WriteString(name)
	first := true
	for _, l := range ls {
		if l.Name == "__name__" {
			continue
		}
		if first {
			w.WriteByte('{')
			first = false
		} else {
			w.WriteByte(',')
		}
		w.WriteString(l.Name)
		w.WriteString(`="`)
		w.WriteString(escapeLabelValue(l.Value))
		w.WriteByte('"')
	}
	if !first {
		w.WriteByte('}')
	}
	w.WriteByte(' ')
	w.WriteString(strconv.FormatFloat(smp.Value, 'g', -1, 64))
	w.WriteByte(' ')
	w.WriteString(strconv.FormatInt(smp.Timestamp, 10))
	w.WriteByte('\n')
}

var labelValueEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)

func escapeLabelValue(v string) string { return labelValueEscaper.Replace(v) }

// Full is never true: writes are synchronous.
func (s *fileSink) Full() bool { return false }

// Start does nothing: the sink has no goroutines.
func (s *fileSink) Start() {}

// Shutdown flushes and closes the file.
func (s *fileSink) Shutdown(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.w.Flush()
	if s.closer != nil {
		if cerr := s.closer.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

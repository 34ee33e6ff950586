package downstream

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/prometheus/prompb"
)

// File is the sink of downstream.file: it writes float samples in the Prometheus text
// exposition format (with timestamps), one line per sample, to a file or stdout. It lets
// `make run` show what cardinal does with no other software installed. Stale markers are
// written as comments; native histograms are not written.
type File struct {
	mu     sync.Mutex
	w      *bufio.Writer
	closer io.Closer
	logger *slog.Logger
}

// NewFile validates cfg and opens its path for appending ("-" is stdout). Write errors are
// logged to logger (discarded if nil).
func NewFile(cfg FileConfig, logger *slog.Logger) (*File, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("downstream", cfg.Name)
	if cfg.Path == "-" {
		return &File{w: bufio.NewWriter(os.Stdout), logger: logger}, nil
	}
	f, err := os.OpenFile(cfg.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &File{w: bufio.NewWriter(f), closer: f, logger: logger}, nil
}

// Send writes the series at once and flushes, so a reader sees whole flushes; it keeps no
// reference to them.
func (s *File) Send(series []prompb.TimeSeries) {
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
func (s *File) Full() bool { return false }

// Start does nothing: the sink has no goroutines.
func (s *File) Start() {}

// Shutdown flushes and closes the file.
func (s *File) Shutdown(context.Context) error {
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

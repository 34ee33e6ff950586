package downstream

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

func TestFileWritesTextFormatLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.prom")
	f, err := NewFile(FileConfig{Name: "file", Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.Send([]prompb.TimeSeries{
		{Labels: labels("__name__", "up", "job", `a"b\c`+"\n"), Samples: []prompb.Sample{{Value: 1, Timestamp: 1000}, {Value: 0.5, Timestamp: 2000}}},
		{Labels: labels("__name__", "bare"), Samples: []prompb.Sample{{Value: math.Float64frombits(0x7ff0000000000002), Timestamp: 3000}}},
	})
	if err := f.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := `up{job="a\"b\\c\n"} 1 1000` + "\n" +
		`up{job="a\"b\\c\n"} 0.5 2000` + "\n" +
		"# stale bare NaN 3000\n"
	if string(got) != want {
		t.Errorf("file holds\n%s\nwant\n%s", got, want)
	}
}

func TestNewFileRefusesWhatValidateRefuses(t *testing.T) {
	cfg := FileConfig{Name: "file"}
	_, err := NewFile(cfg, nil)
	if want := cfg.Validate(); err == nil || want == nil || err.Error() != want.Error() {
		t.Errorf("NewFile says %v, Validate says %v", err, want)
	}
}

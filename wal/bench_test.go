package wal

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// BenchmarkAppend measures Append of 20 KB bodies (a typical compressed remote-write
// request) from 8 appenders per CPU, in each fsync mode, with real segment sizes; it
// reports the fsyncs each append cost. The log is truncated as it goes, as it would be
// behind checkpoints, so the benchmark's disk use stays bounded.
func BenchmarkAppend(b *testing.B) {
	body := bytes.Repeat([]byte("remote write body "), 20<<10/18)
	for _, mode := range []FsyncMode{FsyncAlways, FsyncInterval, FsyncNever} {
		b.Run("fsync="+string(mode), func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Dir, cfg.Fsync = b.TempDir(), mode
			cfg.FsyncInterval = setting.Duration(time.Second)
			var syncs atomic.Int64
			l, err := open(cfg, nil, nil, options{fsync: func(sync func() error) error {
				syncs.Add(1)
				return sync()
			}})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			const truncateEvery = 8192
			b.SetBytes(int64(len(body)))
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					index, err := l.Append(context.Background(), body)
					if err != nil {
						b.Error(err)
						return
					}
					if index%truncateEvery == 0 {
						if err := l.TruncateFront(index - truncateEvery/2); err != nil {
							b.Error(err)
							return
						}
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(syncs.Load())/float64(b.N), "fsyncs/append")
		})
	}
}

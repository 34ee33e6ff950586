package rules

import "time"

// The documented defaults (DESIGN.md §3, §7). Each constructor returns a fresh value.

const (
	defaultListenAddr      = ":9091"
	defaultMaxRequestBytes = 32 << 20
	defaultHTTPTimeout     = 30 * time.Second
	defaultFlushInterval   = 15 * time.Second
	defaultFlushDelay      = 10 * time.Second
	defaultStaleness       = 5 * time.Minute
	defaultCompressAfter   = 7 * 24 * time.Hour
)

// defaultConfig is what an empty file means; the decoder fills the keys present over it.
func defaultConfig() Config {
	return Config{
		Server: ServerConfig{
			ListenAddr:      defaultListenAddr,
			MaxRequestBytes: defaultMaxRequestBytes,
			ReadTimeout:     Duration(defaultHTTPTimeout),
			WriteTimeout:    Duration(defaultHTTPTimeout),
			Limits: LimitsConfig{
				MaxSeriesPerRequest: 50_000,
				MaxLabelsPerSeries:  64,
				MaxLabelNameLength:  1024,
				MaxLabelValueLength: 4096,
			},
		},
		Aggregator: AggregatorConfig{
			FlushInterval: Duration(defaultFlushInterval),
			FlushDelay:    Duration(defaultFlushDelay),
			Staleness:     Duration(defaultStaleness),
			Unmatched:     UnmatchedForward,
		},
	}
}

func defaultRemoteWrite() RemoteWriteConfig {
	return RemoteWriteConfig{
		Timeout: Duration(defaultHTTPTimeout),
		Queue: QueueConfig{
			MaxBytes:          64 << 20,
			MaxSamplesPerSend: 2000,
			Shards:            4,
			MinBackoff:        Duration(30 * time.Millisecond),
			MaxBackoff:        Duration(5 * time.Second),
		},
	}
}

func defaultTimescale() TimescaleConfig {
	return TimescaleConfig{
		ChunkInterval:  Duration(24 * time.Hour),
		PartitionAhead: Duration(3 * 24 * time.Hour),
		BatchSize:      5000,
		MaxQueueBytes:  64 << 20,
	}
}

// List entries get their defaults through the decoder's older Unmarshaler interface, which
// (unlike decoding a yaml.Node) keeps the decoder's strict unknown-key checking. The plain
// types have no methods, so decoding into them does not recurse.
type (
	plainRemoteWrite RemoteWriteConfig
	plainTimescale   TimescaleConfig
)

// UnmarshalYAML fills the defaults, then the keys present.
func (c *RemoteWriteConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = defaultRemoteWrite()
	return unmarshal((*plainRemoteWrite)(c))
}

// UnmarshalYAML fills the defaults, then the keys present.
func (c *TimescaleConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = defaultTimescale()
	return unmarshal((*plainTimescale)(c))
}

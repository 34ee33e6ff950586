package rules

// DownstreamConfig lists where series are written. Every downstream has a unique Name after
// loading (given, or derived: the URL's host, "file", "timescaledb-N"), used in metrics.
type DownstreamConfig struct {
	// RemoteWrite are Prometheus remote-write receivers (aggregator.downstream_url included).
	RemoteWrite []RemoteWriteConfig `yaml:"remote_write"`
	// File writes series in the Prometheus text format to a local file; nil when absent.
	File *FileConfig `yaml:"file"`
	// TimescaleDB are PostgreSQL / TimescaleDB databases.
	TimescaleDB []TimescaleConfig `yaml:"timescaledb"`
}

// RemoteWriteConfig is one remote-write receiver and its send queue.
type RemoteWriteConfig struct {
	// Name labels the downstream in metrics (default: the URL's host[:port]).
	Name string `yaml:"name"`
	// URL is the receiver's write endpoint (http or https).
	URL string `yaml:"url"`
	// Headers are sent with every request; protocol headers cannot be overridden.
	Headers map[string]string `yaml:"headers"`
	// BasicAuth, BearerToken and BearerTokenFile authenticate requests; at most one is set.
	BasicAuth   *BasicAuth `yaml:"basic_auth"`
	BearerToken Secret     `yaml:"bearer_token"`
	// BearerTokenFile is read on each request, so a rotated token is picked up; relative
	// paths are resolved against the config file's directory.
	BearerTokenFile string `yaml:"bearer_token_file"`
	// Timeout bounds one request (default 30s).
	Timeout Duration `yaml:"timeout"`
	// Queue bounds and shapes what is waiting to be sent.
	Queue QueueConfig `yaml:"queue"`
}

// BasicAuth is HTTP basic authentication; the password comes inline or from a file.
type BasicAuth struct {
	// Username is required.
	Username string `yaml:"username"`
	// Password is the inline password; PasswordFile, read on each request, the alternative.
	Password Secret `yaml:"password"`
	// PasswordFile is resolved against the config file's directory when relative.
	PasswordFile string `yaml:"password_file"`
}

// QueueConfig shapes a remote-write send queue.
type QueueConfig struct {
	// MaxBytes bounds the queued data (default 64MiB); when full, the receiver answers 503.
	MaxBytes ByteSize `yaml:"max_bytes"`
	// MaxSamplesPerSend caps one request (default 2000).
	MaxSamplesPerSend int `yaml:"max_samples_per_send"`
	// Shards is the number of concurrent senders (default 4).
	Shards int `yaml:"shards"`
	// MinBackoff and MaxBackoff bound the retry backoff (default 30ms and 5s).
	MinBackoff Duration `yaml:"min_backoff"`
	MaxBackoff Duration `yaml:"max_backoff"`
}

// FileConfig is the local text-format sink, mostly for trying cardinal out.
type FileConfig struct {
	// Name labels the downstream in metrics (default "file").
	Name string `yaml:"name"`
	// Path is the file to append to, "-" for standard output; a relative path is resolved
	// against the config file's directory.
	Path string `yaml:"path"`
}

// TimescaleConfig is one PostgreSQL / TimescaleDB sink.
type TimescaleConfig struct {
	// Name labels the downstream in metrics (default "timescaledb-N", N counting from 1).
	Name string `yaml:"name"`
	// DSN is the connection string (URL or key=value form).
	DSN Secret `yaml:"dsn"`
	// ChunkInterval is the hypertable chunk (or partition) length (default 1d).
	ChunkInterval Duration `yaml:"chunk_interval"`
	// Compression enables TimescaleDB native compression of chunks older than CompressAfter
	// (default 7d when compression is on).
	Compression   bool     `yaml:"compression"`
	CompressAfter Duration `yaml:"compress_after"`
	// Retention drops data older than this (0, the default, keeps everything).
	Retention Duration `yaml:"retention"`
	// PartitionAhead is how far ahead partitions are created on plain PostgreSQL (default 3d).
	PartitionAhead Duration `yaml:"partition_ahead"`
	// BatchSize is the number of rows per write (default 5000).
	BatchSize int `yaml:"batch_size"`
	// MaxQueueBytes bounds the data waiting to be written (default 64MiB).
	MaxQueueBytes ByteSize `yaml:"max_queue_bytes"`
}

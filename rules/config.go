package rules

// Config is cardinal's configuration file: the YAML schema (decoded strictly: an unknown key is
// an error) plus what loading derives from it. Obtain one with Load or Parse, which fill the
// defaults, resolve relative paths against the file's directory, load the rule files and
// compile every rule; the fields then hold the effective values.
type Config struct {
	// Server is the remote-write receiver.
	Server ServerConfig `yaml:"server"`
	// Aggregator holds the defaults rules inherit and what happens to unmatched series.
	Aggregator AggregatorConfig `yaml:"aggregator"`
	// RuleConfigs are the rules written inline in the config file, as written.
	RuleConfigs []RuleConfig `yaml:"rules"`
	// RuleFiles are globs, relative to the config file's directory, of files holding a
	// top-level rules: list each.
	RuleFiles []string `yaml:"rule_files"`
	// Downstream is where aggregated (and forwarded) series are written.
	Downstream DownstreamConfig `yaml:"downstream"`

	// Rules are the compiled rules: inline ones first, then each rule file's, in glob order.
	Rules []*Rule `yaml:"-"`
	// Warnings are "file:line: message" notes about a valid configuration that probably
	// does not do what its author wants (check config prints them).
	Warnings []string `yaml:"-"`
	// Hash identifies the effective configuration (defaults filled, variables expanded, rule
	// files included; comments and layout do not count), so a reload can skip a file that
	// did not really change.
	Hash uint64 `yaml:"-"`
	// Files are the config file and every rule file loaded, for a watcher to watch.
	Files []string `yaml:"-"`
}

// ServerConfig is the remote-write receiver's HTTP server.
type ServerConfig struct {
	// ListenAddr is the host:port to listen on (default ":9091").
	ListenAddr string `yaml:"listen_addr"`
	// MaxRequestBytes caps a request body, both as received (compressed) and once decoded
	// (default 32MiB); larger requests get 413.
	MaxRequestBytes ByteSize `yaml:"max_request_bytes"`
	// ReadTimeout and WriteTimeout bound reading a request and writing its response
	// (default 30s each; 0 means no limit).
	ReadTimeout  Duration `yaml:"read_timeout"`
	WriteTimeout Duration `yaml:"write_timeout"`
	// Limits bound the series of one request and their labels.
	Limits LimitsConfig `yaml:"limits"`
	// MemoryLimit is the process's memory budget (0, the default, means none): the Go
	// runtime's soft memory limit is set to it, and while the live heap is over 90% of it the
	// receiver answers 503, so agents keep their data instead of the process being OOM-killed.
	MemoryLimit ByteSize `yaml:"memory_limit"`
}

// Unmatched says what happens to a series no rule selects.
type Unmatched string

// The two policies for unmatched series.
const (
	// UnmatchedForward writes unmatched series downstream unchanged (the default).
	UnmatchedForward Unmatched = "forward"
	// UnmatchedDrop discards them.
	UnmatchedDrop Unmatched = "drop"
)

// AggregatorConfig holds the defaults of every rule and the policy for unmatched series.
type AggregatorConfig struct {
	// FlushInterval is the default window length of rules (default 15s).
	FlushInterval Duration `yaml:"flush_interval"`
	// FlushDelay is the default time a window stays open after its end for late samples
	// (default 10s); a rule's inherited delay is cut to its interval when longer.
	FlushDelay Duration `yaml:"flush_delay"`
	// Staleness is the default time an input series lives without samples (default 5m).
	Staleness Duration `yaml:"staleness"`
	// Unmatched is forward (default) or drop.
	Unmatched Unmatched `yaml:"unmatched"`
	// DownstreamURL is shorthand for one downstream.remote_write entry with default settings;
	// after loading, that entry is part of Downstream.RemoteWrite, which is all a consumer
	// needs to read.
	DownstreamURL string `yaml:"downstream_url"`
}

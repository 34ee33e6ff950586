package remotewrite

import (
	"errors"
	"net"
	"time"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// DefaultMaxRequestBytes is the default bound on a request body, compressed or decoded.
const DefaultMaxRequestBytes = 32 << 20

// ServerConfig is the receiver's HTTP server (the server section of the config file).
type ServerConfig struct {
	// ListenAddr is the host:port to listen on (default ":9091").
	ListenAddr string `yaml:"listen_addr"`
	// MaxRequestBytes caps a request body, both as received (compressed) and once decoded
	// (default 32MiB); larger requests get 413.
	MaxRequestBytes setting.ByteSize `yaml:"max_request_bytes"`
	// ReadTimeout and WriteTimeout bound reading a request and writing its response
	// (default 30s each; 0 means no limit).
	ReadTimeout  setting.Duration `yaml:"read_timeout"`
	WriteTimeout setting.Duration `yaml:"write_timeout"`
	// Limits bound the series of one request and their labels.
	Limits LimitsConfig `yaml:"limits"`
	// MemoryLimit is the process's memory budget (0, the default, means none): the Go
	// runtime's soft memory limit is set to it, and while the live heap is over 90% of it the
	// receiver answers 503, so agents keep their data instead of the process being OOM-killed.
	MemoryLimit setting.ByteSize `yaml:"memory_limit"`
}

// LimitsConfig is Limits as the config file writes it (server.limits). Each limit is counted
// when it bites; 0 turns it off. Per-rule cardinality limits are max_input_series and
// max_output_series on the rule.
type LimitsConfig struct {
	// MaxSeriesPerRequest refuses a whole request with more series: 413 (default 50000).
	MaxSeriesPerRequest setting.Limit `yaml:"max_series_per_request"`
	// MaxLabelsPerSeries refuses a series with more labels, __name__ included; the rest of
	// its request is kept and the answer is 400 (default 64).
	MaxLabelsPerSeries setting.Limit `yaml:"max_labels_per_series"`
	// MaxLabelNameLength and MaxLabelValueLength refuse a series with a longer label name or
	// value, in bytes, like MaxLabelsPerSeries (defaults 1024 and 4096).
	MaxLabelNameLength  setting.Limit `yaml:"max_label_name_length"`
	MaxLabelValueLength setting.Limit `yaml:"max_label_value_length"`
}

// DefaultServerConfig is what an absent server section means.
func DefaultServerConfig() ServerConfig {
	l := DefaultLimits()
	return ServerConfig{
		ListenAddr:      ":9091",
		MaxRequestBytes: DefaultMaxRequestBytes,
		ReadTimeout:     setting.Duration(30 * time.Second),
		WriteTimeout:    setting.Duration(30 * time.Second),
		Limits: LimitsConfig{
			MaxSeriesPerRequest: setting.Limit(l.MaxSeriesPerRequest),
			MaxLabelsPerSeries:  setting.Limit(l.MaxLabelsPerSeries),
			MaxLabelNameLength:  setting.Limit(l.MaxLabelNameLength),
			MaxLabelValueLength: setting.Limit(l.MaxLabelValueLength),
		},
	}
}

// Limits are the receiver limits the section sets.
func (c LimitsConfig) Limits() Limits {
	return Limits{
		MaxSeriesPerRequest: int(c.MaxSeriesPerRequest),
		MaxLabelsPerSeries:  int(c.MaxLabelsPerSeries),
		MaxLabelNameLength:  int(c.MaxLabelNameLength),
		MaxLabelValueLength: int(c.MaxLabelValueLength),
	}
}

// Validate reports every problem of the section, each as a *setting.Error at its key.
func (c *ServerConfig) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		errs = append(errs, setting.At("listen_addr").Errorf("server.listen_addr %q is not host:port (write \":9091\" for every interface, \"127.0.0.1:9091\" for this host only)", c.ListenAddr))
	}
	if c.MaxRequestBytes <= 0 {
		errs = append(errs, setting.At("max_request_bytes").Errorf("server.max_request_bytes must be more than 0"))
	}
	if c.ReadTimeout < 0 {
		errs = append(errs, setting.At("read_timeout").Errorf("server.read_timeout must not be negative (0 means no limit)"))
	}
	if c.WriteTimeout < 0 {
		errs = append(errs, setting.At("write_timeout").Errorf("server.write_timeout must not be negative (0 means no limit)"))
	}
	if c.MemoryLimit < 0 {
		errs = append(errs, setting.At("memory_limit").Errorf("server.memory_limit must not be negative (0 means none)"))
	}
	return errors.Join(errs...)
}

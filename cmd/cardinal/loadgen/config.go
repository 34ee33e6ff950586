package loadgen

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// config is the parsed command line of one load-generation run.
type config struct {
	url              *url.URL
	allowRemote      bool
	metrics          int
	seriesPerMetric  int
	constLabels      []label
	labelValueLength int
	instances        int
	groups           int
	metricPrefix     string
	mix              mix
	buckets          []float64
	churn            float64
	interval         time.Duration // 0: derived from --rate in live mode, else 15s
	samplesPerReq    int
	concurrency      int
	rate             float64
	duration         time.Duration
	requests         int64
	history          time.Duration
	timeout          time.Duration
	pid              int
	output           string
}

// label is one name/value pair of a generated series.
type label struct{ name, value string }

// mix holds the relative weights of the metric types.
type mix struct{ counter, gauge, histogram float64 }

const (
	defaultInterval      = 15 * time.Second
	defaultDuration      = 10 * time.Second
	podPrefix            = "pod-"
	instancePrefix       = "node-"
	minChurnDigits       = 8
	defaultLabelValueLen = 16
)

// ErrUsage marks errors in the command line, as opposed to errors of the run itself.
var ErrUsage = errors.New("usage")

// parseConfig parses the loadgen flags; help goes to out.
func parseConfig(args []string, out io.Writer) (config, error) {
	fs := flag.NewFlagSet("cardinal loadgen", flag.ContinueOnError)
	fs.SetOutput(out)
	var (
		cfg       config
		rawURL    string
		rawLabels string
		rawMix    string
		rawBucket string
	)
	fs.StringVar(&rawURL, "url", "http://127.0.0.1:9091/api/v1/write", "remote-write endpoint to load (loopback only unless --allow-remote)")
	fs.BoolVar(&cfg.allowRemote, "allow-remote", false, "allow a target that is not a loopback address")
	fs.IntVar(&cfg.metrics, "metrics", 10, "number of metric names")
	fs.IntVar(&cfg.seriesPerMetric, "series", 1000, "series per metric (distinct pod label values); a histogram series is several time series")
	fs.StringVar(&rawLabels, "labels", "job=loadgen", "constant labels on every series, name=value,name=value")
	fs.IntVar(&cfg.labelValueLength, "label-value-length", defaultLabelValueLen, "length of the pod and instance label values")
	fs.IntVar(&cfg.instances, "instances", 100, "distinct instance label values (series j gets instance j mod N)")
	fs.IntVar(&cfg.groups, "groups", 0, "if > 0, add a label group with this many values (j mod N), which survives dropping pod and instance")
	fs.StringVar(&cfg.metricPrefix, "metric-prefix", "loadgen", "prefix of the generated metric names")
	fs.StringVar(&rawMix, "mix", "counter=1,gauge=0,histogram=0", "relative weights of the metric types")
	fs.StringVar(&rawBucket, "buckets", "0.005,0.05,0.5,5", "histogram bucket upper bounds (+Inf is added)")
	fs.Float64Var(&cfg.churn, "churn", 0, "fraction of series replaced (new pod value, counters restart) per interval, 0..1")
	fs.DurationVar(&cfg.interval, "interval", 0, "sample interval: timestamps step by this per round (default: series/--rate in live mode so timestamps follow the clock, else 15s)")
	fs.IntVar(&cfg.samplesPerReq, "samples-per-request", 2000, "samples (one per time series) in each request")
	fs.IntVar(&cfg.concurrency, "concurrency", 4, "requests in flight at once")
	fs.Float64Var(&cfg.rate, "rate", 0, "target samples per second (0: as fast as possible)")
	fs.DurationVar(&cfg.duration, "duration", 0, "stop after this long (default 10s when neither --requests nor --history bounds the run)")
	fs.Int64Var(&cfg.requests, "requests", 0, "stop after this many requests (0: no limit)")
	fs.DurationVar(&cfg.history, "history", 0, "send synthetic history: timestamps from now-HISTORY to now stepping by --interval, then stop")
	fs.DurationVar(&cfg.timeout, "timeout", 30*time.Second, "timeout of one request")
	fs.IntVar(&cfg.pid, "pid", 0, "receiver process id: report its CPU per sample and memory from /proc")
	fs.StringVar(&cfg.output, "output", "text", "report format: text or json")
	if err := fs.Parse(args); err != nil {
		return config{}, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	var err error
	if cfg.url, err = url.Parse(rawURL); err != nil {
		return config{}, fmt.Errorf("%w: --url: %w", ErrUsage, err)
	}
	if cfg.constLabels, err = parseLabels(rawLabels); err != nil {
		return config{}, fmt.Errorf("%w: --labels: %w", ErrUsage, err)
	}
	if cfg.mix, err = parseMix(rawMix); err != nil {
		return config{}, fmt.Errorf("%w: --mix: %w", ErrUsage, err)
	}
	if cfg.buckets, err = parseBuckets(rawBucket); err != nil {
		return config{}, fmt.Errorf("%w: --buckets: %w", ErrUsage, err)
	}
	if cfg.duration == 0 && cfg.requests == 0 && cfg.history == 0 {
		cfg.duration = defaultDuration
	}
	if err := cfg.validate(); err != nil {
		return config{}, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	return cfg, nil
}

// validate checks the ranges the generator relies on.
func (c *config) validate() error {
	switch {
	case c.url.Scheme != "http" && c.url.Scheme != "https":
		return fmt.Errorf("--url %q: scheme must be http or https", c.url)
	case c.metrics < 1:
		return errors.New("--metrics must be at least 1")
	case c.seriesPerMetric < 1:
		return errors.New("--series must be at least 1")
	case c.instances < 1:
		return errors.New("--instances must be at least 1")
	case c.groups < 0:
		return errors.New("--groups must not be negative")
	case c.churn < 0 || c.churn > 1 || math.IsNaN(c.churn):
		return fmt.Errorf("--churn %v: must be between 0 and 1", c.churn)
	case c.interval < 0 || (c.interval > 0 && c.interval < time.Millisecond):
		return errors.New("--interval must be at least 1ms")
	case c.samplesPerReq < 1:
		return errors.New("--samples-per-request must be at least 1")
	case c.concurrency < 1:
		return errors.New("--concurrency must be at least 1")
	case c.rate < 0 || math.IsNaN(c.rate) || math.IsInf(c.rate, 0):
		return errors.New("--rate must be a non-negative number")
	case c.duration < 0 || c.requests < 0 || c.history < 0:
		return errors.New("--duration, --requests and --history must not be negative")
	case c.timeout <= 0:
		return errors.New("--timeout must be positive")
	case c.pid < 0:
		return errors.New("--pid must not be negative")
	case c.output != "text" && c.output != "json":
		return fmt.Errorf("--output %q: want text or json", c.output)
	case c.metricPrefix == "" || !validName(c.metricPrefix):
		return fmt.Errorf("--metric-prefix %q is not a valid metric name", c.metricPrefix)
	}
	podDigits := c.labelValueLength - len(podPrefix)
	if podDigits < digits(c.seriesPerMetric-1) || c.labelValueLength-len(instancePrefix) < digits(c.instances-1) {
		return fmt.Errorf("--label-value-length %d is too short for %d series and %d instances", c.labelValueLength, c.seriesPerMetric, c.instances)
	}
	if c.churn > 0 && podDigits < minChurnDigits {
		return fmt.Errorf("--label-value-length %d is too short with churn: need at least %d", c.labelValueLength, len(podPrefix)+minChurnDigits)
	}
	for _, l := range c.constLabels {
		if reserved(l.name) {
			return fmt.Errorf("--labels: %q is a label the generator sets itself", l.name)
		}
	}
	return nil
}

// reserved reports whether the generator owns the label name.
func reserved(name string) bool {
	switch name {
	case "__name__", "pod", "instance", "le", "group":
		return true
	}
	return false
}

// parseLabels parses name=value,name=value into labels sorted by name.
func parseLabels(s string) ([]label, error) {
	var out []label
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || !validName(name) || strings.Contains(name, ":") || value == "" {
			return nil, fmt.Errorf("%q: want name=value with a valid label name and a non-empty value", part)
		}
		if slices.ContainsFunc(out, func(l label) bool { return l.name == name }) {
			return nil, fmt.Errorf("label %q given twice", name)
		}
		out = append(out, label{name, value})
	}
	slices.SortFunc(out, func(a, b label) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// parseMix parses counter=W,gauge=W,histogram=W; missing types weigh 0.
func parseMix(s string) (mix, error) {
	var m mix
	for part := range strings.SplitSeq(s, ",") {
		name, raw, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return mix{}, fmt.Errorf("%q: want type=weight", part)
		}
		w, err := strconv.ParseFloat(raw, 64)
		if err != nil || w < 0 || math.IsInf(w, 0) || math.IsNaN(w) {
			return mix{}, fmt.Errorf("%q: weight must be a non-negative number", part)
		}
		switch name {
		case "counter":
			m.counter = w
		case "gauge":
			m.gauge = w
		case "histogram":
			m.histogram = w
		default:
			return mix{}, fmt.Errorf("%q: type must be counter, gauge or histogram", name)
		}
	}
	if m.counter+m.gauge+m.histogram == 0 {
		return mix{}, errors.New("at least one weight must be positive")
	}
	return m, nil
}

// String formats the mix the way --mix takes it.
func (m mix) String() string {
	f := func(w float64) string { return strconv.FormatFloat(w, 'g', -1, 64) }
	return "counter=" + f(m.counter) + ",gauge=" + f(m.gauge) + ",histogram=" + f(m.histogram)
}

// parseBuckets parses strictly increasing finite bucket bounds.
func parseBuckets(s string) ([]float64, error) {
	var out []float64
	for part := range strings.SplitSeq(s, ",") {
		b, err := strconv.ParseFloat(strings.TrimSpace(part), 64)
		if err != nil || math.IsInf(b, 0) || math.IsNaN(b) {
			return nil, fmt.Errorf("%q: want a finite number (+Inf is added)", part)
		}
		if len(out) > 0 && b <= out[len(out)-1] {
			return nil, errors.New("bounds must be strictly increasing")
		}
		out = append(out, b)
	}
	return out, nil
}

// validName reports whether s is a legacy Prometheus metric or label name.
func validName(s string) bool {
	for i, r := range s {
		ok := r == '_' || r == ':' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return s != ""
}

// digits is the number of decimal digits of n >= 0.
func digits(n int) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}

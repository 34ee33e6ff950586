package rules

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// normalizeDownstream validates the downstream section, turns aggregator.downstream_url into
// a remote_write entry, resolves relative file paths against dir and gives every downstream a
// unique name. At least one downstream is required: without one, cardinal would aggregate
// into the void.
func normalizeDownstream(cfg *Config, dir string, root place) {
	d := &cfg.Downstream
	at := root.sub("downstream")
	for i := range d.RemoteWrite {
		validateRemoteWrite(&d.RemoteWrite[i], dir, at.sub("remote_write", i))
	}
	if u := cfg.Aggregator.DownstreamURL; u != "" {
		agg := root.sub("aggregator")
		if err := checkHTTPURL(u); err != nil {
			agg.errorf("downstream_url", "aggregator.downstream_url: %v", err)
		}
		rw := defaultRemoteWrite()
		rw.URL = u
		d.RemoteWrite = append(d.RemoteWrite, rw)
	}
	if d.File != nil {
		fileAt := at.sub("file")
		switch d.File.Path {
		case "":
			fileAt.errorf("path", "downstream.file.path is required (\"-\" writes to standard output)")
		case "-":
		default:
			d.File.Path = resolvePath(dir, d.File.Path)
		}
	}
	for i := range d.TimescaleDB {
		validateTimescale(&d.TimescaleDB[i], at.sub("timescaledb", i))
	}
	if len(d.RemoteWrite) == 0 && d.File == nil && len(d.TimescaleDB) == 0 {
		root.errorf("downstream", "no downstream: set aggregator.downstream_url, downstream.remote_write, downstream.file or downstream.timescaledb")
	}
	nameDownstreams(d, root)
	warnDuplicateURLs(d.RemoteWrite, at)
}

func validateRemoteWrite(rw *RemoteWriteConfig, dir string, at place) {
	if rw.URL == "" {
		at.errorf("url", "remote_write: url is required")
	} else if err := checkHTTPURL(rw.URL); err != nil {
		at.errorf("url", "remote_write url: %v", err)
	}
	for _, name := range slices.Sorted(maps.Keys(rw.Headers)) {
		value, hat := rw.Headers[name], at.sub("headers")
		switch {
		case !validHeaderName(name):
			hat.errorf(name, "headers: %q is not a valid HTTP header name", name)
		case strings.EqualFold(name, "Authorization"):
			hat.errorf(name, "headers: set Authorization with basic_auth, bearer_token or bearer_token_file")
		case slices.Contains(reservedHeaders(), http.CanonicalHeaderKey(name)):
			hat.errorf(name, "headers: %s is set by cardinal's remote-write client and cannot be overridden", http.CanonicalHeaderKey(name))
		case strings.ContainsAny(value, "\r\n"):
			hat.errorf(name, "headers: the value of %s contains a line break", name)
		}
	}
	auths := 0
	for _, set := range []bool{rw.BasicAuth != nil, rw.BearerToken != "", rw.BearerTokenFile != ""} {
		if set {
			auths++
		}
	}
	if auths > 1 {
		at.errorf("", "remote_write: basic_auth, bearer_token and bearer_token_file are mutually exclusive")
	}
	if rw.BearerTokenFile != "" {
		rw.BearerTokenFile = resolvePath(dir, rw.BearerTokenFile)
	}
	if ba := rw.BasicAuth; ba != nil {
		bat := at.sub("basic_auth")
		if ba.Username == "" {
			bat.errorf("username", "basic_auth: username is required")
		}
		if ba.Password != "" && ba.PasswordFile != "" {
			bat.errorf("password_file", "basic_auth: password and password_file are mutually exclusive")
		}
		if ba.PasswordFile != "" {
			ba.PasswordFile = resolvePath(dir, ba.PasswordFile)
		}
	}
	if rw.Timeout <= 0 {
		at.errorf("timeout", "remote_write: timeout must be more than 0")
	}
	validateQueue(&rw.Queue, at.sub("queue"))
}

func validateQueue(q *QueueConfig, at place) {
	if q.MaxBytes <= 0 {
		at.errorf("max_bytes", "queue.max_bytes must be more than 0")
	}
	if q.MaxSamplesPerSend <= 0 {
		at.errorf("max_samples_per_send", "queue.max_samples_per_send must be more than 0")
	}
	if q.Shards <= 0 {
		at.errorf("shards", "queue.shards must be more than 0")
	}
	if q.MinBackoff <= 0 {
		at.errorf("min_backoff", "queue.min_backoff must be more than 0")
	}
	if q.MaxBackoff < q.MinBackoff {
		at.errorf("max_backoff", "queue.max_backoff %s is shorter than min_backoff %s", q.MaxBackoff, q.MinBackoff)
	}
}

func validateTimescale(t *TimescaleConfig, at place) {
	if t.DSN == "" {
		at.errorf("dsn", "timescaledb: dsn is required (e.g. postgres://user:password@host:5432/metrics)")
	}
	if time.Duration(t.ChunkInterval) < time.Minute {
		at.errorf("chunk_interval", "timescaledb: chunk_interval must be at least 1m, not %s", t.ChunkInterval)
	}
	switch {
	case !t.Compression && at.has("compress_after"):
		at.errorf("compress_after", "timescaledb: compress_after needs compression: true")
	case t.Compression && t.CompressAfter == 0:
		t.CompressAfter = Duration(defaultCompressAfter)
	}
	if t.BatchSize <= 0 {
		at.errorf("batch_size", "timescaledb: batch_size must be more than 0")
	}
	if t.MaxQueueBytes <= 0 {
		at.errorf("max_queue_bytes", "timescaledb: max_queue_bytes must be more than 0")
	}
}

// nameDownstreams gives every downstream a unique name: an explicit one (which may not
// repeat), or the URL's host[:port], "file" or "timescaledb-N", with _2, _3... appended when
// taken.
func nameDownstreams(d *DownstreamConfig, root place) {
	type entry struct {
		name     *string
		fallback string
		at       place
	}
	var entries []entry
	for i := range d.RemoteWrite {
		host := ""
		if u, err := url.Parse(d.RemoteWrite[i].URL); err == nil {
			host = u.Host
		}
		// The entry made from aggregator.downstream_url has no name key, so never an error.
		entries = append(entries, entry{&d.RemoteWrite[i].Name, host, root.sub("downstream", "remote_write", i)})
	}
	if d.File != nil {
		entries = append(entries, entry{&d.File.Name, "file", root.sub("downstream", "file")})
	}
	for i := range d.TimescaleDB {
		entries = append(entries, entry{&d.TimescaleDB[i].Name, fmt.Sprintf("timescaledb-%d", i+1), root.sub("downstream", "timescaledb", i)})
	}
	taken := map[string]bool{}
	for _, e := range entries {
		if n := *e.name; n != "" {
			if taken[n] {
				e.at.errorf("name", "downstream name %q is used twice: names must be unique", n)
			}
			taken[n] = true
		}
	}
	for _, e := range entries {
		if *e.name != "" {
			continue
		}
		name := e.fallback
		for n := 2; taken[name]; n++ {
			name = fmt.Sprintf("%s_%d", e.fallback, n)
		}
		taken[name] = true
		*e.name = name
	}
}

// warnDuplicateURLs warns when two remote_write entries write to the same URL (typically
// downstream_url repeated in downstream.remote_write): every series would be written twice.
func warnDuplicateURLs(rws []RemoteWriteConfig, at place) {
	for i := range rws {
		for j := range i {
			if rws[i].URL != "" && rws[i].URL == rws[j].URL {
				at.warnf("", "downstreams %q and %q both write to %s: every series is sent twice", rws[j].Name, rws[i].Name, rws[i].URL)
			}
		}
	}
}

// checkHTTPURL accepts an absolute http or https URL with a host.
func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("invalid URL %q: %v", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL with a host", s)
	}
	return nil
}

// resolvePath makes a relative path relative to the config file's directory, as Prometheus
// does for the files its configuration names.
func resolvePath(dir, path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

// reservedHeaders are the headers the remote-write protocol and HTTP client own (as in
// Prometheus).
func reservedHeaders() []string {
	return []string{
		"Host", "Content-Encoding", "Content-Length", "Content-Type", "User-Agent", "Connection",
		"Keep-Alive", "Proxy-Authorization", "Accept-Encoding",
		"X-Prometheus-Remote-Write-Version",
	}
}

// validHeaderName reports whether s is an HTTP token (RFC 9110 §5.6.2).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

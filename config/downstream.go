package config

import (
	"fmt"
	"net/url"
	"path/filepath"

	"github.com/cardinal-proxy/cardinal/downstream"
)

// normalizeDownstream validates the downstream section, turns aggregator.downstream_url into
// a remote_write entry, resolves relative file paths against dir and gives every downstream a
// unique name. At least one downstream is required: without one, cardinal would aggregate
// into the void.
func normalizeDownstream(cfg *Config, dir string, root place) {
	d := &cfg.Downstream
	at := root.sub("downstream")
	for i := range d.RemoteWrite {
		at.sub("remote_write", i).validate(&d.RemoteWrite[i])
		resolveRemoteWritePaths(&d.RemoteWrite[i], dir)
	}
	if u := cfg.Aggregator.DownstreamURL; u != "" {
		agg := root.sub("aggregator")
		if err := downstream.CheckHTTPURL(u); err != nil {
			agg.errorf("downstream_url", "aggregator.downstream_url: %v", err)
		}
		rw := downstream.DefaultRemoteWriteConfig()
		rw.URL = u
		d.RemoteWrite = append(d.RemoteWrite, rw)
	}
	if d.File != nil {
		at.sub("file").validate(d.File)
		if d.File.Path != "" && d.File.Path != "-" {
			d.File.Path = resolvePath(dir, d.File.Path)
		}
	}
	for i := range d.TimescaleDB {
		at.sub("timescaledb", i).validate(&d.TimescaleDB[i])
	}
	if len(d.RemoteWrite) == 0 && d.File == nil && len(d.TimescaleDB) == 0 {
		root.errorf("downstream", "no downstream: set aggregator.downstream_url, downstream.remote_write, downstream.file or downstream.timescaledb")
	}
	nameDownstreams(d, root)
	warnDuplicateURLs(d.RemoteWrite, at)
}

// resolveRemoteWritePaths makes the credential and TLS files of an entry relative to dir.
func resolveRemoteWritePaths(rw *downstream.RemoteWriteConfig, dir string) {
	if rw.BearerTokenFile != "" {
		rw.BearerTokenFile = resolvePath(dir, rw.BearerTokenFile)
	}
	if ba := rw.BasicAuth; ba != nil && ba.PasswordFile != "" {
		ba.PasswordFile = resolvePath(dir, ba.PasswordFile)
	}
	resolveTLSPaths(rw.TLSConfig, dir)
}

// resolveTLSPaths makes the files of a TLS block (nil: none) relative to dir.
func resolveTLSPaths(t *downstream.TLSConfig, dir string) {
	if t == nil {
		return
	}
	for _, p := range []*string{&t.CAFile, &t.CertFile, &t.KeyFile} {
		if *p != "" {
			*p = resolvePath(dir, *p)
		}
	}
}

// nameDownstreams gives every downstream a unique name: an explicit one (which may not
// repeat), or the URL's host[:port], "file" or "timescaledb-N", with _2, _3... appended when
// taken.
func nameDownstreams(d *DownstreamSection, root place) {
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
func warnDuplicateURLs(rws []downstream.RemoteWriteConfig, at place) {
	for i := range rws {
		for j := range i {
			if rws[i].URL != "" && rws[i].URL == rws[j].URL {
				at.warnf("", "downstreams %q and %q both write to %s: every series is sent twice", rws[j].Name, rws[i].Name, rws[i].URL)
			}
		}
	}
}

// resolvePath makes a relative path relative to the config file's directory, as Prometheus
// does for the files its configuration names.
func resolvePath(dir, path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

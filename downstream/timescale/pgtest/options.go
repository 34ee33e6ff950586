package pgtest

// Option changes how Start sets up a server.
type Option func(*config)

// config is what the options set.
type config struct {
	durable     bool
	timescaledb bool
	settings    [][2]string // -c name=value, in order
}

// Durable keeps PostgreSQL's default durability (fsync, synchronous_commit and
// full_page_writes on), for benchmarks that must measure what a real server costs. Without
// it they are off: a test server need not survive a power cut, and tests run faster.
func Durable() Option {
	return func(c *config) { c.durable = true }
}

// TimescaleDB preloads the TimescaleDB extension (shared_preload_libraries=timescaledb, with
// telemetry off), so that a database can CREATE EXTENSION timescaledb and its background jobs
// run. When the extension is not installed for the server's PostgreSQL, Start skips the test,
// or fails it under CI=true, as for missing server binaries.
func TimescaleDB() Option {
	return func(c *config) { c.timescaledb = true }
}

// Setting sets a server configuration parameter (postgres -c name=value), for instance
// Setting("max_connections", "200") or Setting("log_statement", "all"). It overrides the
// defaults of Start and Durable.
func Setting(name, value string) Option {
	return func(c *config) { c.settings = append(c.settings, [2]string{name, value}) }
}

// serverArgs are the postgres command-line settings for c: the test defaults, then the
// caller's.
func (c config) serverArgs() []string {
	settings := [][2]string{{"max_connections", "50"}}
	if !c.durable {
		settings = append(settings, [2]string{"fsync", "off"}, [2]string{"synchronous_commit", "off"},
			[2]string{"full_page_writes", "off"})
	}
	if c.timescaledb {
		settings = append(settings, [2]string{"shared_preload_libraries", "timescaledb"},
			[2]string{"timescaledb.telemetry_level", "off"})
	}
	settings = append(settings, c.settings...)
	args := make([]string, 0, 2*len(settings))
	for _, s := range settings {
		args = append(args, "-c", s[0]+"="+s[1])
	}
	return args
}

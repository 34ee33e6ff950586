// Package pgtest starts throwaway PostgreSQL servers for tests, as net/http/httptest starts
// HTTP servers: Start runs initdb and postgres (the Debian postgresql package) in a temporary
// directory, listening on 127.0.0.1 and a free port only, and removes everything when the
// test ends. It owns the server's life cycle; what a test does with the database is its own.
package pgtest

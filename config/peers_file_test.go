package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Loading reads cluster.peers_file, relative to the config file as start-up reads it, and
// reports a broken one at its line; --syntax-only skips it.
func TestLoadReadsThePeersFile(t *testing.T) {
	tests := []struct {
		name    string
		content string // of peers.yaml beside the config; "" for none
		want    string // the one problem, after "cardinal.yaml:3: "; "" for none
	}{
		{"missing", "", "cluster.peers_file: peers file: open {dir}/peers.yaml: no such file or directory"},
		{"not_a_list", "not: [a list\n", "cluster.peers_file: peers file {dir}/peers.yaml: want a YAML list of host:port strings"},
		{"an_address_twice", "[127.0.0.1:1, 127.0.0.1:1]\n", `cluster.peers_file: peers file {dir}/peers.yaml, entry 2: peer "127.0.0.1:1" is listed twice; remove one`},
		{"sound_relative_to_the_config", "- a=127.0.0.1:1\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.content != "" {
				if err := os.WriteFile(filepath.Join(dir, "peers.yaml"), []byte(tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			file := filepath.Join(dir, "cardinal.yaml")
			text := "downstream: {file: {path: \"-\"}}\ncluster:\n  peers_file: peers.yaml\n"
			cfg, err := Loader{}.Parse([]byte(text), file)
			if tt.want == "" {
				if err != nil || cfg.Cluster.PeersFile != filepath.Join(dir, "peers.yaml") {
					t.Fatalf("got %v; want the peers file read from %s", err, dir)
				}
				return
			}
			want := file + ":3: " + strings.ReplaceAll(tt.want, "{dir}", dir)
			if got := errorLines(err); len(got) != 1 || !strings.HasPrefix(got[0], want) {
				t.Fatalf("got %q; want one problem starting %q", got, want)
			}
			if _, err := (Loader{SyntaxOnly: true}).Parse([]byte(text), file); err != nil {
				t.Errorf("--syntax-only read the peers file: %v", err)
			}
			// A reload of the rules does not fail on a peers file caught mid-write: the
			// cluster section takes effect at a restart.
			if _, err := (Loader{Reloading: true}).Parse([]byte(text), file); err != nil {
				t.Errorf("a reload read the peers file: %v", err)
			}
		})
	}
}

// cluster.peers are checked together: an address listed twice is an error at the later entry.
func TestLoadRefusesAPeerListedTwice(t *testing.T) {
	_, err := parseYAML(t, "downstream: {file: {path: \"-\"}}\ncluster:\n  peers:\n    - 127.0.0.1:1\n    - x=127.0.0.1:1\n")
	want := []string{`cardinal.yaml:5: cluster.peers[1]: peer "x=127.0.0.1:1": the address 127.0.0.1:1 is already listed as "127.0.0.1:1"; list each address once`}
	if got := errorLines(err); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

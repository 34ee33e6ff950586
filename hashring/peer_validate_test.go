package hashring

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// unsoundPeerLists are peer lists each entry of which parses but which, taken together or
// by a name, cannot describe a cluster. bad is the index of the one entry at fault.
var unsoundPeerLists = []struct {
	name    string
	entries []string
	bad     int
	msg     string // the problem says this
}{
	{"name_with_a_space", []string{"10.0.0.1:9090", "bad name=127.0.0.1:9"}, 1, `cluster member name "bad name": only letters`},
	{"name_with_a_slash", []string{"a/b=127.0.0.1:9"}, 0, `cluster member name "a/b"`},
	{"one_name_at_two_addresses", []string{"x=127.0.0.1:1", "x=127.0.0.1:2"}, 1, "the name x is already given to 127.0.0.1:1"},
	{"exact_duplicate", []string{"127.0.0.1:1", "10.0.0.2:9090", "127.0.0.1:1"}, 2, `peer "127.0.0.1:1" is listed twice`},
	{"named_duplicate", []string{"x=127.0.0.1:1", "x=127.0.0.1:1"}, 1, "is listed twice"},
	{"one_address_under_two_names", []string{"a=127.0.0.1:1", "b=127.0.0.1:1"}, 1, `already listed as "a=127.0.0.1:1"`},
	{"one_address_named_and_not", []string{"127.0.0.1:1", "a=127.0.0.1:1"}, 1, `already listed as "127.0.0.1:1"`},
}

func TestConfigValidateRejectsUnsoundPeerLists(t *testing.T) {
	for _, tt := range unsoundPeerLists {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Peers = tt.entries
			errs := setting.Errors(c.Validate())
			if len(errs) != 1 || !slices.Equal(errs[0].Key, setting.At("peers", tt.bad)) {
				t.Fatalf("got %v, want one problem at peers[%d]", errs, tt.bad)
			}
			if !strings.Contains(errs[0].Msg, tt.msg) || !strings.Contains(errs[0].Msg, tt.entries[tt.bad]) {
				t.Errorf("message %q does not name the entry %q and say %q", errs[0].Msg, tt.entries[tt.bad], tt.msg)
			}
		})
	}
}

func TestConfigValidateAcceptsDistinctPeers(t *testing.T) {
	c := DefaultConfig()
	c.Peers = []string{"a=127.0.0.1:1", "b=127.0.0.1:2", "127.0.0.1:3", "node-a.local:1", "[fd00::1]:1", "n_1.x-y=h:1"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestFileDiscovererRejectsUnsoundLists(t *testing.T) {
	for _, tt := range unsoundPeerLists {
		t.Run(tt.name, func(t *testing.T) {
			path := writePeersFile(t, "- "+strings.Join(tt.entries, "\n- ")+"\n")
			got, err := (&FileDiscoverer{Path: path}).Discover(t.Context())
			want := fmt.Sprintf("entry %d: ", tt.bad+1)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v, %v; want an error naming %s and saying %q and %q", got, err, path, want, tt.msg)
			}
		})
	}
}

func TestConfigCheckFilesReadsThePeersFile(t *testing.T) {
	tests := []struct {
		name    string
		content string // "" for no file
		msg     string // the problem says this; "" when the file is sound
	}{
		{"missing", "", "no such file"},
		{"not_yaml", "not: [a list\n", "want a YAML list"},
		{"a_map", "peers: [127.0.0.1:1]\n", "want a YAML list"},
		{"empty", "\n", "is empty"},
		{"entry_without_port", "- 127.0.0.1\n", "entry 1"},
		{"entry_listed_twice", "[127.0.0.1:1, 127.0.0.1:1]\n", "entry 2"},
		{"name_invalid", "['bad name=127.0.0.1:9']\n", `cluster member name "bad name"`},
		{"sound", "- a=127.0.0.1:1\n- 127.0.0.1:2\n", ""},
		{"explicit_empty_list", "[]\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.PeersFile = filepath.Join(t.TempDir(), "absent.yaml")
			if tt.content != "" {
				c.PeersFile = writePeersFile(t, tt.content)
			}
			errs := setting.Errors(c.CheckFiles())
			if tt.msg == "" {
				if len(errs) != 0 {
					t.Fatalf("a sound peers file: %v", errs)
				}
				return
			}
			if len(errs) != 1 || !slices.Equal(errs[0].Key, setting.At("peers_file")) {
				t.Fatalf("got %v, want one problem at peers_file", errs)
			}
			if m := errs[0].Msg; !strings.HasPrefix(m, "cluster.peers_file: ") || !strings.Contains(m, c.PeersFile) || !strings.Contains(m, tt.msg) {
				t.Errorf("message %q does not name cluster.peers_file and %s and say %q", m, c.PeersFile, tt.msg)
			}
		})
	}
}

// writePeersFile writes content to a peers file in a new temporary directory.
func writePeersFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "peers.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Each entry at fault is reported once, with its own problem: a repeat of an entry whose
// name was taken is a repeat, not a third address.
func TestCheckPeerListReportsEachEntryAtFault(t *testing.T) {
	errs := checkPeerList([]string{"x=127.0.0.1:1", "x=127.0.0.1:2", "x=127.0.0.1:2", "ok=127.0.0.1:3"})
	var got []string
	for _, e := range errs {
		got = append(got, fmt.Sprintf("%d: %v", e.index, e.err))
	}
	want := []string{
		`1: peer "x=127.0.0.1:2": the name x is already given to 127.0.0.1:1; a member has one address`,
		`2: peer "x=127.0.0.1:2" is listed twice; remove one`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

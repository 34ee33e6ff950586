package config

import (
	"os"

	"github.com/cespare/xxhash/v2"
)

// FilesHash hashes the names and content of files; unreadable files count as empty. A change
// of the hash is what makes a watcher reload the configuration (or the web configuration):
// it sees a ConfigMap's symlink swap as well as an edit in place.
func FilesHash(files []string) uint64 {
	d := xxhash.New()
	for _, f := range files {
		b, _ := os.ReadFile(f)
		_, _ = d.WriteString(f)
		_, _ = d.Write([]byte{0})
		_, _ = d.Write(b)
		_, _ = d.Write([]byte{0})
	}
	return d.Sum64()
}

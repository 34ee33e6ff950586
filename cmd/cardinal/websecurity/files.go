package websecurity

import (
	"os"

	"github.com/cespare/xxhash/v2"
)

// filesHash hashes the names and content of files; unreadable files count as empty. A
// change of the hash is what makes the web config, token and certificate files reload.
func filesHash(files []string) uint64 {
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

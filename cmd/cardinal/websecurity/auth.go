package websecurity

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"net/http"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// dummyBcryptHash is checked against when a request names an unknown user, so that an
// unknown user takes as long to refuse as a wrong password and user names cannot be probed.
const dummyBcryptHash = "$2a$10$vLQ3Rx1Rs.KUZXKe.ARtcuhgsOSNgRUhTEoHIsxMsC2wy7UZ1Gov2"

// maxAuthCacheEntries bounds the cache of verified credentials.
const maxAuthCacheEntries = 1024

// Reasons in cardinal_web_auth_failures_total.
const (
	authMissing = "missing" // no credentials, or a scheme that is not configured
	authInvalid = "invalid" // wrong user, password or token
)

// authenticator checks a request's credentials against the basic_auth_users and the bearer
// token of a web config. bcrypt is slow by design (tens of milliseconds): successful checks
// are remembered in the verifiedCache, so an agent writing every second pays for it once.
type authenticator struct {
	users    map[string][]byte // user -> bcrypt hash
	tokenSum []byte            // sha256 of the bearer token; nil when none is configured
	verified *verifiedCache
}

// newAuthenticator returns the authenticator of cfg, or nil when cfg asks for none.
func newAuthenticator(cfg *webConfig, verified *verifiedCache) *authenticator {
	if !cfg.authEnabled() {
		return nil
	}
	a := &authenticator{users: make(map[string][]byte, len(cfg.BasicAuthUsers)), verified: verified}
	for u, h := range cfg.BasicAuthUsers {
		a.users[u] = []byte(h)
	}
	if cfg.bearerToken != "" {
		sum := sha256.Sum256([]byte(cfg.bearerToken))
		a.tokenSum = sum[:]
	}
	return a
}

// check returns "" when r carries valid credentials, else the reason it does not.
func (a *authenticator) check(r *http.Request) string {
	hdr := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(hdr, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer") && a.tokenSum != nil:
		sum := sha256.Sum256([]byte(strings.TrimSpace(cred)))
		if subtle.ConstantTimeCompare(sum[:], a.tokenSum) == 1 {
			return ""
		}
		return authInvalid
	case strings.EqualFold(scheme, "Basic") && len(a.users) > 0:
		user, pass, ok := r.BasicAuth()
		if !ok {
			return authInvalid
		}
		hash, known := a.users[user]
		if !known {
			_ = bcrypt.CompareHashAndPassword([]byte(dummyBcryptHash), []byte(pass))
			return authInvalid
		}
		key := verifiedKey(user, hash, pass)
		if a.verified.has(key) {
			return ""
		}
		if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil {
			return authInvalid
		}
		a.verified.add(key)
		return ""
	}
	return authMissing
}

// verifiedKey identifies a user, hash and password that were checked, without holding the
// password: a changed hash (a reload) gives another key.
func verifiedKey(user string, hash []byte, pass string) [sha256.Size]byte {
	var b []byte
	for _, part := range [][]byte{[]byte(user), hash, []byte(pass)} {
		b = binary.AppendUvarint(b, uint64(len(part)))
		b = append(b, part...)
	}
	return sha256.Sum256(b)
}

// verifiedCache remembers credentials that passed bcrypt, bounded in size. It outlives
// configuration reloads: its keys include the hash.
type verifiedCache struct {
	mu   sync.Mutex
	keys map[[sha256.Size]byte]struct{}
}

func newVerifiedCache() *verifiedCache {
	return &verifiedCache{keys: map[[sha256.Size]byte]struct{}{}}
}

func (c *verifiedCache) has(k [sha256.Size]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.keys[k]
	return ok
}

func (c *verifiedCache) add(k [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.keys) >= maxAuthCacheEntries {
		clear(c.keys)
	}
	c.keys[k] = struct{}{}
}

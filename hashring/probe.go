package hashring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// IdentityPath is where every cardinal serves its Identity.
const IdentityPath = "/cluster/v1/identity"

// maxIdentityBytes bounds the identity body a probe reads.
const maxIdentityBytes = 64 << 10

// Identity is what a cardinal says about itself to its peers.
type Identity struct {
	// Name is its member name.
	Name string `json:"name"`
	// Ready is true once it can take forwarded series; a peer that is not ready does not
	// join and, if a member, counts as unseen.
	Ready bool `json:"ready"`
	// RingVersion is Ring.VersionString of the ring it routes by, so peers and operators
	// can tell whether the cluster agrees.
	RingVersion string `json:"ring_version"`
	// Leaving is true once the member has been removed from discovery and is handing its
	// outputs to the others: peers drop it from their rings at once.
	Leaving bool `json:"leaving,omitempty"`
	// Instance is a random id of the process, the same for its whole life: another process
	// answering with this member's name (two members configured with one name, which both
	// run alone and write the same outputs) is told apart by it.
	Instance string `json:"instance,omitempty"`
	// InRing says whether the ring it routes by includes the member the probe named (its
	// member query parameter, MemberParam); absent when the probe named none, and from
	// cardinals older than it. A member starting into a running cluster stays out of its own
	// ring until a peer says so (Admitted).
	InRing *bool `json:"in_ring,omitempty"`
	// Outside is true while it stays out of its own ring, waiting for its peers to add
	// it: it writes no output, so what its ring includes says nothing of who writes them.
	Outside bool `json:"outside,omitempty"`
}

// MemberParam is the query parameter of a probe that names the probing member, so that the
// answer's InRing is about it.
const MemberParam = "member"

// IdentityHandler serves identity(asker) as JSON on GET (and HEAD), asker being the member
// the probe named (MemberParam; "" if none); mount it at IdentityPath.
func IdentityHandler(identity func(asker string) Identity) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := json.Marshal(identity(r.URL.Query().Get(MemberParam)))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(append(body, '\n'))
	})
}

// Prober asks the cardinal at addr (host:port) for its Identity.
type Prober interface {
	Probe(ctx context.Context, addr string) (Identity, error)
}

// HTTPProber probes with GET <Scheme>://<addr>/cluster/v1/identity.
type HTTPProber struct {
	// Client sends the request; nil means a zero http.Client. Membership bounds each
	// probe with probe_timeout through the context.
	Client *http.Client
	// Scheme is "http" (the default when empty) or "https".
	Scheme string
	// Header is added to every request, e.g. Authorization.
	Header http.Header
	// Member is the name of the probing member, sent as MemberParam so that the answer
	// says whether the peer's ring includes it (Identity.InRing); empty sends none.
	Member string
}

// Probe fetches and decodes the identity. A status other than 200, a body that is not an
// Identity, or one without a name is an error.
func (p HTTPProber) Probe(ctx context.Context, addr string) (Identity, error) {
	var id Identity
	scheme := p.Scheme
	if scheme == "" {
		scheme = "http"
	}
	target := scheme + "://" + addr + IdentityPath
	if p.Member != "" {
		target += "?" + url.Values{MemberParam: {p.Member}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return id, fmt.Errorf("probe %s: %w", addr, err)
	}
	for k, vs := range p.Header {
		req.Header[k] = append(req.Header[k], vs...)
	}
	req.Header.Set("Accept", "application/json")
	client := p.Client
	if client == nil {
		client = &http.Client{}
	}
	resp, err := client.Do(req)
	if err != nil {
		return id, fmt.Errorf("probe %s: %w", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIdentityBytes))
	if err != nil {
		return id, fmt.Errorf("probe %s: reading the answer: %w", addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		return id, fmt.Errorf("probe %s: %s", addr, resp.Status)
	}
	if err := json.Unmarshal(body, &id); err != nil {
		return Identity{}, fmt.Errorf("probe %s: the answer is not an identity: %w", addr, err)
	}
	if id.Name == "" {
		return Identity{}, fmt.Errorf("probe %s: %w", addr, errNoName)
	}
	return id, nil
}

// errNoName is the error of an identity without a name.
var errNoName = errors.New("the identity has no name")

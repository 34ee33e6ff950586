package hashring

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// The headers of a forwarded request: who sent it, and the ring it routed by (its version and
// its member names), so that the owner aggregates exactly what the sender meant it to even
// when the two do not agree on the ring yet; and the version of the rule set it routed by
// (hexadecimal), which lets an owner with the same rules and ring skip placing again.
const (
	HeaderForwardedBy = "X-Cardinal-Forwarded-By"
	HeaderRingVersion = "X-Cardinal-Ring-Version"
	HeaderRingMembers = "X-Cardinal-Ring-Members"
	HeaderRules       = "X-Cardinal-Rules-Version"
)

// ForwardInfo is what a forwarded request says about its sender.
type ForwardInfo struct {
	// From is the sender's member name.
	From string
	// Version is the sender's ring version (Ring.VersionString).
	Version string
	// Members are the names of the sender's ring, sorted.
	Members []string
	// Rules is the version of the rule set the sender routed by
	// (aggregator.Route.SenderRules); 0 when the header is absent or unreadable.
	Rules uint64
}

// ParseForwardInfo reads the forwarding headers; ok is false for a request an agent sent.
func ParseForwardInfo(h http.Header) (fi ForwardInfo, ok bool, err error) {
	from := h.Get(HeaderForwardedBy)
	if from == "" {
		return ForwardInfo{}, false, nil
	}
	fi = ForwardInfo{From: from, Version: h.Get(HeaderRingVersion)}
	if m := h.Get(HeaderRingMembers); m != "" {
		fi.Members = strings.Split(m, ",")
	}
	fi.Rules, _ = strconv.ParseUint(h.Get(HeaderRules), 16, 64) // 0 on error: place again
	if len(fi.Members) == 0 || fi.Version == "" {
		return fi, true, fmt.Errorf("a request forwarded by %q lacks %s or %s", from, HeaderRingVersion, HeaderRingMembers)
	}
	return fi, true, nil
}

// checkSenderRing checks the ring a forwarded request names, when it is not the one in
// force here (SenderView builds it): at most MaxMembers members, and the version of exactly
// those members, so that a request cannot make this member build a ring it cannot hold, nor
// file a ring under another's version.
func checkSenderRing(fi ForwardInfo) error {
	v, n := versionOf(fi.Members)
	switch {
	case n > MaxMembers:
		return fmt.Errorf("a request forwarded by %q names %d ring members, at most %d are supported", fi.From, n, MaxMembers)
	case versionString(v) != fi.Version:
		return fmt.Errorf("a request forwarded by %q names ring version %s, but its %d members make %s", fi.From, fi.Version, n, versionString(v))
	}
	return nil
}

// header returns the headers a sender routing by r sets.
func forwardHeader(self string, r *Ring) http.Header {
	names := make([]string, 0, r.Len())
	for _, m := range r.members {
		names = append(names, m.Name)
	}
	h := http.Header{}
	h.Set(HeaderForwardedBy, self)
	h.Set(HeaderRingVersion, r.VersionString())
	h.Set(HeaderRingMembers, strings.Join(names, ","))
	return h
}

type forwardKey struct{}

// WithForwardInfo returns ctx carrying fi, for the receiver to tell the appender that a
// request was forwarded.
func WithForwardInfo(ctx context.Context, fi ForwardInfo) context.Context {
	return context.WithValue(ctx, forwardKey{}, fi)
}

// ForwardInfoFrom returns the ForwardInfo ctx carries, if any.
func ForwardInfoFrom(ctx context.Context) (ForwardInfo, bool) {
	fi, ok := ctx.Value(forwardKey{}).(ForwardInfo)
	return fi, ok
}

// Receiver wraps the remote-write handler: a request with the forwarding headers is marked
// as forwarded (its ForwardInfo in the request's context) for the appender, and one whose
// headers are incomplete is refused with 400.
func (f *Forwarder) Receiver(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fi, ok, err := ParseForwardInfo(r.Header)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		if err == nil && fi.Version != f.cur.Load().view.ring.VersionString() {
			err = checkSenderRing(fi)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if r.ContentLength > 0 {
			f.metrics.receivedBytes.WithLabelValues(f.peers.label(fi.From)).Add(float64(r.ContentLength))
		}
		next.ServeHTTP(w, r.WithContext(WithForwardInfo(r.Context(), fi)))
	})
}

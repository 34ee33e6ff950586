package hashring

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// HandoffPath is where a member receives the state of outputs it gained from their previous
// owner (docs/design.md §5).
const HandoffPath = "/cluster/v1/handoff"

// maxHandoffBytes bounds a handoff body: the state of a few million output series.
const maxHandoffBytes = 2 << 30

// Handoff is the state a flush took out of the aggregator: Encode returns the part whose
// placement keys keep selects (aggregator.Handoff).
type Handoff interface {
	Encode(keep func(key uint64) bool) []byte
	Len() int
}

// Owns reports whether this member owns the output with placement key key in the ring in
// force (aggregator.Ownership).
func (f *Forwarder) Owns(key uint64) bool { return f.cur.Load().view.Owner(key) == -1 }

// Awaits reports whether this member gained key's shard in the last ring change, less than
// the handoff timeout ago, so that its previous owner's state may still come
// (aggregator.Ownership). After a start, every owned key may: the state of a member that
// joins a running cluster is with the others.
func (f *Forwarder) Awaits(key uint64) bool {
	ps := f.cur.Load()
	if ps.view.Owner(key) != -1 || time.Since(ps.since) > f.handoffTimeout {
		return false
	}
	return ps.prev == nil || ps.prev.Owner(key) != -1
}

// OnRingChange sets a function called after each change of the ring in force (the server
// hands off what this member lost then).
func (f *Forwarder) OnRingChange(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onChange = fn
}

// SendHandoff sends each owner its part of h, in the background, retrying with backoff for
// up to the handoff timeout. A part that cannot be delivered is lost, logged and counted:
// its owner goes on from the state it has.
func (f *Forwarder) SendHandoff(h Handoff) {
	ps := f.cur.Load()
	for i, m := range ps.view.ring.members {
		if i == ps.view.self {
			continue
		}
		body := h.Encode(func(key uint64) bool { return ps.view.Owner(key) == i })
		if body == nil {
			continue
		}
		go f.deliverHandoff(m.Name, body)
	}
}

// deliverHandoff posts one handoff body to member name until it is accepted.
func (f *Forwarder) deliverHandoff(name string, body []byte) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), f.handoffTimeout)
	defer cancel()
	client := &http.Client{Transport: f.transport(), Timeout: time.Duration(f.cfg.Timeout)}
	bo := f.backoff()
	for attempt := 0; ; attempt++ {
		err := f.postHandoff(ctx, client, name, body)
		if err == nil {
			f.metrics.handoffs.WithLabelValues(name, "ok").Inc()
			f.metrics.handoffBytes.WithLabelValues(name).Add(float64(len(body)))
			f.metrics.handoffDuration.Observe(time.Since(start).Seconds())
			return
		}
		select {
		case <-ctx.Done():
			f.metrics.handoffs.WithLabelValues(name, "failed").Inc()
			f.logger.Error("cluster: handoff not delivered; the new owner goes on without it", "peer", name, "bytes", len(body), "err", err)
			return
		case <-time.After(bo.Delay(attempt, 0)):
		}
	}
}

func (f *Forwarder) postHandoff(ctx context.Context, client *http.Client, name string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.scheme+"://"+name+HandoffPath, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range f.auth {
		req.Header[k] = v
	}
	req.Header.Set(HeaderForwardedBy, f.self)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}

// HandoffHandler receives handoffs and gives them to merge (aggregator.Merge); a body merge
// refuses is a 400.
func (f *Forwarder) HandoffHandler(merge func([]byte) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxHandoffBytes))
		if err != nil {
			http.Error(w, "reading the handoff: "+err.Error(), http.StatusBadRequest)
			return
		}
		from := r.Header.Get(HeaderForwardedBy)
		if err := merge(body); err != nil {
			f.metrics.handoffsReceived.WithLabelValues(from, "refused").Inc()
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.metrics.handoffsReceived.WithLabelValues(from, "ok").Inc()
		w.WriteHeader(http.StatusNoContent)
	})
}

package hashring

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"
)

// maxConcurrentProbes bounds the probes in flight during one round.
const maxConcurrentProbes = 64

// discover returns the union of what every source finds, by address; an address two
// sources name differently is left out.
func (m *Membership) discover(ctx context.Context) ([]peer, error) {
	byAddr := map[string]string{}
	contradicted := map[string]bool{}
	var errs []error
	skippedAny := false
	defer func() {
		if !skippedAny {
			m.lastSkipped = "" // so that a bad record served again is logged again
		}
	}()
	for _, d := range m.discoverers {
		entries, err := d.Discover(ctx)
		var skipped *SkippedRecords
		switch {
		case errors.As(err, &skipped):
			skippedAny = true
			m.noteSkipped(skipped)
		case err != nil:
			errs = append(errs, err)
			continue
		}
		for _, e := range entries {
			p, err := parsePeer(e)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			name, seen := byAddr[p.addr]
			switch {
			case !seen || name == "":
				byAddr[p.addr] = p.name
			case p.name != "" && p.name != name:
				contradicted[p.addr] = true
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	peers := make([]peer, 0, len(byAddr))
	for addr, name := range byAddr {
		if contradicted[addr] {
			m.logger.Warn("cluster peer listed under two names; ignored", "addr", addr)
			continue
		}
		peers = append(peers, peer{name: name, addr: addr})
	}
	sort.Slice(peers, func(i, j int) bool { return peers[i].addr < peers[j].addr })
	return peers, nil
}

// noteSkipped logs what a discovery left out, when it differs from what it left out the
// round before (a bad record served for hours is one line, not one a round), and counts it.
func (m *Membership) noteSkipped(s *SkippedRecords) {
	m.mu.Lock()
	m.stats.SkippedRecords += uint64(len(s.Records))
	m.mu.Unlock()
	if msg := s.Error(); msg != m.lastSkipped {
		m.lastSkipped = msg
		m.logger.Warn("cluster discovery: unusable records left out", "err", msg)
	}
}

// answer is the outcome of probing one discovered peer.
type answer struct {
	peer peer
	id   Identity
	err  error
}

// probeAll probes every peer concurrently, each bounded by probe_timeout, and returns the
// answers in the order of peers.
func (m *Membership) probeAll(ctx context.Context, peers []peer) []answer {
	answers := make([]answer, len(peers))
	slots := make(chan struct{}, maxConcurrentProbes)
	var wg sync.WaitGroup
	for i, p := range peers {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			pctx, cancel := ctx, context.CancelFunc(func() {})
			if t := time.Duration(m.cfg.ProbeTimeout); t > 0 {
				pctx, cancel = context.WithTimeout(ctx, t)
			}
			defer cancel()
			id, err := m.prober.Probe(pctx, p.addr)
			answers[i] = answer{peer: p, id: id, err: err}
		})
	}
	wg.Wait()
	return answers
}

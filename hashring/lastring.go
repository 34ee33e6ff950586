package hashring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// LastRingFile is the name of LastRing's file in the write-ahead log's directory.
const LastRingFile = "cluster.ring"

// lastRing is LastRingFile's content.
type lastRing struct {
	// Self is the name of the member that wrote it: a member renamed since does not resume
	// a ring in which its old name is a peer that will never answer.
	Self    string       `json:"self"`
	Members []lastMember `json:"members"`
}

type lastMember struct {
	Name string `json:"name"`
	Addr string `json:"addr,omitempty"`
}

// LastRing is the file, in the write-ahead log's directory, that holds the members this
// member last routed by. With a write-ahead log, a restart resumes them (Load,
// Membership.Resume): what the log replays and what the checkpoint had queued for peers was
// routed by that ring, and is routed by it again. Safe for concurrent use.
type LastRing struct {
	path, self string

	mu    sync.Mutex
	saved []Member // what the file holds, as Save last wrote it
}

// OpenLastRing returns the LastRing of member self in directory dir.
func OpenLastRing(dir, self string) *LastRing {
	return &LastRing{path: filepath.Join(dir, LastRingFile), self: self}
}

// Save writes members, the ring self routes by, unless the file holds them already,
// replacing what was there at once (a rename) and durably.
func (l *LastRing) Save(members []Member) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if slices.Equal(members, l.saved) {
		return nil
	}
	lr := lastRing{Self: l.self}
	for _, m := range members {
		lr.Members = append(lr.Members, lastMember{Name: m.Name, Addr: m.Addr})
	}
	b, err := json.Marshal(lr)
	if err != nil {
		return err
	}
	if err := writeFileDurably(l.path, append(b, '\n')); err != nil {
		return fmt.Errorf("saving the cluster ring: %w", err)
	}
	l.saved = slices.Clone(members)
	return nil
}

// writeFileDurably replaces path with b at once (a rename of a synced temporary file) and
// syncs the directory.
func writeFileDurably(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Load returns the members Save wrote: none when there is no file (a first start), and an
// error when it does not parse or another member wrote it (cluster.name changed).
func (l *LastRing) Load() ([]Member, error) {
	b, err := os.ReadFile(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var lr lastRing
	if err := json.Unmarshal(b, &lr); err != nil {
		return nil, fmt.Errorf("%s: %w", l.path, err)
	}
	if lr.Self != l.self {
		return nil, fmt.Errorf("%s was written by member %q, and this member is %q", l.path, lr.Self, l.self)
	}
	members := make([]Member, 0, len(lr.Members))
	for _, m := range lr.Members {
		if err := ValidateName(m.Name); err != nil {
			return nil, fmt.Errorf("%s: %w", l.path, err)
		}
		members = append(members, Member{Name: m.Name, Addr: m.Addr})
	}
	if len(members) > MaxMembers {
		return nil, fmt.Errorf("%s: %d members, more than %d", l.path, len(members), MaxMembers)
	}
	return members, nil
}

// Resume makes members (a previous process's ring: LastRing.Load) the current members before
// the first round, as if they had joined: each leaves as any member does, once unseen for
// leave_after, and self is a member whatever the list says. A member restarted with its
// peers down (a whole cluster restarted at once) then routes what it replays by the ring
// it was written under, to owners that drop what they have already counted by its
// timestamp, instead of owning every output alone and handing them off later on top of
// what their owners counted from the same samples. It does nothing after the first round.
func (m *Membership) Resume(members []Member) {
	_ = m.lockRound(context.Background()) // no error: the context never ends
	defer m.unlockRound()
	m.mu.Lock()
	if !m.started.IsZero() {
		m.mu.Unlock()
		return
	}
	ring := []Member{m.self}
	for _, mb := range members {
		if mb.Name == m.self.Name || m.peers[mb.Name] != nil {
			continue
		}
		m.peers[mb.Name] = &peerState{addr: mb.Addr, member: true}
		ring = append(ring, mb)
	}
	m.stats.Members = len(ring)
	m.mu.Unlock()
	if len(ring) > 1 {
		m.logger.Info("cluster: resuming the ring of the previous process until discovery says otherwise", "members", len(ring))
		m.install(ring, true)
	}
}

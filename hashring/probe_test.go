package hashring

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cardinal-proxy/cardinal/downstream"
)

func TestIdentityHandlerAndHTTPProberAgree(t *testing.T) {
	want := Identity{Name: "node-a", Ready: true, RingVersion: "00000000000000ff"}
	var gotAuth string
	mux := http.NewServeMux()
	// The ring it answers for has node-z: the answer says so to node-z, and says nothing
	// to a probe that names no member.
	handler := IdentityHandler(func(asker string) Identity {
		id := want
		if asker != "" {
			in := asker == "node-z"
			id.InRing = &in
		}
		return id
	})
	mux.Handle(IdentityPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		handler.ServeHTTP(w, r)
	}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	p := HTTPProber{Client: srv.Client(), Header: http.Header{"Authorization": {"Bearer s3cret"}}}
	got, err := p.Probe(t.Context(), addr)
	if err != nil || got != want {
		t.Fatalf("Probe() = %+v, %v; want %+v", got, err, want)
	}
	for member, in := range map[string]bool{"node-z": true, "node-y": false} {
		p.Member = member
		got, err := p.Probe(t.Context(), addr)
		if err != nil || got.Name != want.Name || got.InRing == nil || *got.InRing != in {
			t.Fatalf("Probe() naming %s = %+v, %v; want InRing %v", member, got, err, in)
		}
	}
	p.Member = ""
	if gotAuth != "Bearer s3cret" {
		t.Errorf("the server saw Authorization %q", gotAuth)
	}

	resp, err := srv.Client().Post(srv.URL+IdentityPath, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST got %s, want 405", resp.Status)
	}
}

func TestHTTPProberOverTLS(t *testing.T) {
	srv := httptest.NewTLSServer(IdentityHandler(func(string) Identity { return Identity{Name: "node-b"} }))
	defer srv.Close()
	p := HTTPProber{Client: srv.Client(), Scheme: "https"}
	got, err := p.Probe(t.Context(), strings.TrimPrefix(srv.URL, "https://"))
	if err != nil || got.Name != "node-b" || got.Ready {
		t.Fatalf("Probe() = %+v, %v", got, err)
	}
}

func TestHTTPProberRejectsBadAnswers(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr string
	}{
		{"not_found", http.StatusNotFound, "404 page not found", "404"},
		{"unavailable", http.StatusServiceUnavailable, `{"name":"node-a","ready":true}`, "503"},
		{"not_json", http.StatusOK, "<html>", "not an identity"},
		{"no_name", http.StatusOK, `{"ready":true}`, "no name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			id, err := HTTPProber{Client: srv.Client()}.Probe(t.Context(), strings.TrimPrefix(srv.URL, "http://"))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || id != (Identity{}) {
				t.Fatalf("got %+v, %v; want an error saying %q", id, err, tt.wantErr)
			}
		})
	}
}

func TestHTTPProberHonoursTheContextDeadline(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := HTTPProber{Client: srv.Client()}.Probe(ctx, strings.TrimPrefix(srv.URL, "http://"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
}

// TestProbesAndForwardingCheckTheSameCertificateName: without tls.server_name, a peer's
// certificate is checked against the host of its address, by the probe that finds it and
// by forwarding to it alike. Forwarding checked it against the member name: a certificate
// for the address let the probes through and failed every forward; one for the node name
// the reverse, and no peer ever joined.
func TestProbesAndForwardingCheckTheSameCertificateName(t *testing.T) {
	got := make(chan string, 1)
	mux := http.NewServeMux()
	mux.Handle(IdentityPath, IdentityHandler(func(string) Identity { return Identity{Name: "node-b", Ready: true} }))
	mux.Handle(HandoffPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get(headerHandoffID)
		w.WriteHeader(http.StatusNoContent)
	}))
	srv := httptest.NewTLSServer(mux) // its certificate names 127.0.0.1 and example.com
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultForwardConfig()
	cfg.TLS = &downstream.TLSConfig{CAFile: ca}
	f, err := NewForwarder("node-a", cfg, time.Minute, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(srv.URL, "https://")
	if id, err := f.Prober().Probe(t.Context(), addr); err != nil || id.Name != "node-b" {
		t.Fatalf("probe over TLS: %+v, %v", id, err)
	}
	f.SetMembers([]Member{{Name: "node-b", Addr: addr}})
	f.ResendHandoffs([]PendingHandoff{{Peer: "node-b", ID: "node-a/1", Body: []byte("state")}})
	select {
	case id := <-got:
		if id != "node-a/1" {
			t.Errorf("handoff id %q", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no handoff reached the peer over TLS: its certificate, for its address, was checked against the member name")
	}
}

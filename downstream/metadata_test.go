package downstream

import (
	"context"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
	"gopkg.in/yaml.v3"

	"github.com/cardinal-proxy/cardinal/config/setting"
	"github.com/cardinal-proxy/cardinal/remotewrite"
)

// staticMetadata is an OutputMetadata of fixed families.
type staticMetadata []prompb.MetricMetadata

func (m staticMetadata) MetadataOf(name string) (prompb.MetricMetadata, bool) {
	for _, md := range m {
		if md.MetricFamilyName == name {
			return md, true
		}
	}
	return prompb.MetricMetadata{}, false
}

func (m staticMetadata) Metadata() []prompb.MetricMetadata { return m }

// metadataReceiver is cardinal's own receiver (1.0 and 2.0), recording the metadata of
// every request: 1.0's metadata messages, 2.0's inline metadata.
type metadataReceiver struct {
	mu       sync.Mutex
	requests int // requests with metadata and no series
	seen     map[string]prompb.MetricMetadata
}

func (r *metadataReceiver) Append(_ context.Context, req *prompb.WriteRequest, _ []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(req.Timeseries) == 0 && len(req.Metadata) > 0 {
		r.requests++
	}
	for _, md := range req.Metadata {
		md.Help, md.Unit, md.MetricFamilyName = string([]byte(md.Help)), string([]byte(md.Unit)), string([]byte(md.MetricFamilyName))
		r.seen[md.MetricFamilyName] = md
	}
	return nil
}

func (r *metadataReceiver) got(name string) (prompb.MetricMetadata, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	md, ok := r.seen[name]
	return md, ok
}

func startMetadataReceiver(t *testing.T) (*metadataReceiver, string) {
	rec := &metadataReceiver{seen: map[string]prompb.MetricMetadata{}}
	srv := httptest.NewServer(remotewrite.NewHandler(rec, remotewrite.HandlerOptions{}, nil, nil))
	t.Cleanup(srv.Close)
	return rec, srv.URL + remotewrite.WritePath
}

var testFamilies = staticMetadata{
	{MetricFamilyName: "http_requests_total", Type: prompb.MetricMetadata_COUNTER, Help: "Requests.", Unit: "requests"},
	{MetricFamilyName: "temp", Type: prompb.MetricMetadata_GAUGE, Help: "Temperature.", Unit: "celsius"},
}

// Remote Write 1.0 gets every family's metadata in metadata-only requests, each interval.
func TestRemoteWriteSendsMetadataV1(t *testing.T) {
	rec, url := startMetadataReceiver(t)
	cfg := testConfig(url)
	cfg.MetadataConfig.SendInterval = setting.Duration(50 * time.Millisecond)
	cfg.MetadataConfig.MaxSamplesPerSend = 1 // one family per request
	reg := prometheus.NewRegistry()
	c := newTestClient(t, cfg, reg)
	c.SendMetadata(testFamilies)
	c.Start()
	eventually(t, 5*time.Second, "both families at the receiver, twice", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.requests >= 4
	})
	for _, want := range testFamilies {
		if got, ok := rec.got(want.MetricFamilyName); !ok || got.String() != want.String() {
			t.Errorf("received %v (%v), want %v", got, ok, want)
		}
	}
	// The sender counts a request once its answer is back, which may be just after the
	// receiver counted it.
	eventually(t, 5*time.Second, "cardinal_downstream_metadata_sent_total at least 4", func() bool {
		return metricValue(t, reg, "cardinal_downstream_metadata_sent_total", nil) >= 4
	})
}

// Remote Write 2.0 sends each series' metadata inline, and no metadata-only requests.
func TestRemoteWriteSendsMetadataV2Inline(t *testing.T) {
	rec, url := startMetadataReceiver(t)
	cfg := testConfig(url)
	cfg.ProtobufMessage = MessageV2
	cfg.MetadataConfig.SendInterval = setting.Duration(10 * time.Millisecond)
	c := newTestClient(t, cfg, prometheus.NewRegistry())
	c.SendMetadata(testFamilies)
	c.Start()
	c.Send([]prompb.TimeSeries{
		{Labels: labels("__name__", "http_requests_total", "code", "200"), Samples: []prompb.Sample{{Value: 1, Timestamp: 1000}}},
		{Labels: labels("__name__", "unknown_metric"), Samples: []prompb.Sample{{Value: 1, Timestamp: 1000}}},
	})
	eventually(t, 5*time.Second, "the counter's metadata at the receiver", func() bool {
		_, ok := rec.got("http_requests_total")
		return ok
	})
	if got, _ := rec.got("http_requests_total"); got.String() != testFamilies[0].String() {
		t.Errorf("inline metadata %v, want %v", got, testFamilies[0])
	}
	time.Sleep(50 * time.Millisecond) // five send intervals: 2.0 sends no metadata requests
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.requests != 0 {
		t.Errorf("%d metadata-only requests to a 2.0 receiver, want 0", rec.requests)
	}
	if _, ok := rec.seen["temp"]; ok {
		t.Error("metadata of a family with no series sent to a 2.0 receiver")
	}
	if _, ok := rec.seen["unknown_metric"]; ok {
		t.Error("metadata invented for a series without any")
	}
}

// metadata_config.send: false sends none.
func TestRemoteWriteMetadataOff(t *testing.T) {
	rec, url := startMetadataReceiver(t)
	cfg := testConfig(url)
	cfg.MetadataConfig.Send = false
	cfg.MetadataConfig.SendInterval = setting.Duration(10 * time.Millisecond)
	c := newTestClient(t, cfg, prometheus.NewRegistry())
	c.SendMetadata(testFamilies)
	c.Start()
	c.Send([]prompb.TimeSeries{{Labels: labels("__name__", "http_requests_total"), Samples: []prompb.Sample{{Value: 1, Timestamp: 1000}}}})
	time.Sleep(100 * time.Millisecond)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.seen) != 0 {
		t.Errorf("metadata sent with send: false: %v", slices.Collect(maps.Keys(rec.seen)))
	}
}

// A metadata_config that sets one key keeps the defaults of the others; bad values are
// errors at their keys.
func TestMetadataConfig(t *testing.T) {
	var c RemoteWriteConfig
	if err := yaml.Unmarshal([]byte("url: http://a/api/v1/write\nmetadata_config:\n  send_interval: 10s\n"), &c); err != nil {
		t.Fatal(err)
	}
	if want := (MetadataConfig{Send: true, SendInterval: setting.Duration(10 * time.Second), MaxSamplesPerSend: 500}); c.MetadataConfig != want {
		t.Errorf("metadata_config %+v, want %+v", c.MetadataConfig, want)
	}
	c.MetadataConfig.SendInterval, c.MetadataConfig.MaxSamplesPerSend = 0, -1
	err := c.Validate()
	for _, key := range []string{"metadata_config.send_interval", "metadata_config.max_samples_per_send"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("Validate: %v, want an error at %s", err, key)
		}
	}
	c.MetadataConfig.Send = false
	if err := c.Validate(); err != nil {
		t.Errorf("send: false with other keys unset: %v", err)
	}
}

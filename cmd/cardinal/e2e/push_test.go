package e2e

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// pushRW sends series to url as one Remote Write 1.0 request (protobuf, snappy block,
// version 0.1.0 headers) and returns the HTTP status code. The response body of a non-2xx
// answer is logged.
func pushRW(t testing.TB, url string, series []prompb.TimeSeries) int {
	t.Helper()
	req := prompb.WriteRequest{Timeseries: series}
	raw, err := req.Marshal()
	if err != nil {
		t.Fatalf("marshal write request: %v", err)
	}
	httpReq, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		t.Fatal(err)
	}
	httpReq.Header.Set("Content-Encoding", "snappy")
	httpReq.Header.Set("Content-Type", "application/x-protobuf")
	httpReq.Header.Set("User-Agent", "cardinal-e2e")
	httpReq.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(httpReq)
	if err != nil {
		t.Fatalf("remote write to %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		t.Logf("remote write to %s: %d: %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return resp.StatusCode
}

// labelSet builds sorted prompb labels for metric name and name/value pairs.
func labelSet(name string, pairs ...string) []prompb.Label {
	if len(pairs)%2 != 0 {
		panic("labelSet: odd number of name/value strings")
	}
	ls := []prompb.Label{{Name: "__name__", Value: name}}
	for i := 0; i < len(pairs); i += 2 {
		ls = append(ls, prompb.Label{Name: pairs[i], Value: pairs[i+1]})
	}
	slices.SortFunc(ls, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
	return ls
}

// labelKey is seriesKey of a prompb label set, to look a pushed series up in query results.
func labelKey(ls []prompb.Label) string {
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.Name] = l.Value
	}
	return seriesKey(m)
}

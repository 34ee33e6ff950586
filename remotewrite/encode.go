package remotewrite

import (
	"fmt"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// An Encoder marshals series into a snappy-compressed (block format) Remote Write 1.0 body,
// reusing its buffers: the returned bytes are valid until the next call. The zero value is
// ready to use; an Encoder is not safe for concurrent use.
type Encoder struct {
	req   prompb.WriteRequest
	proto []byte
	out   []byte
}

// Encode returns the body of a WriteRequest holding series.
func (e *Encoder) Encode(series []prompb.TimeSeries) ([]byte, error) {
	e.req.Timeseries = series
	defer func() { e.req.Timeseries = nil }() // do not keep the caller's series alive

	return marshalSnappy(&e.req, &e.proto, &e.out)
}

// EncodeMetadata returns the body of a WriteRequest holding only metadata, as Prometheus
// sends it: a request of its own, apart from the samples.
func (e *Encoder) EncodeMetadata(md []prompb.MetricMetadata) ([]byte, error) {
	e.req.Metadata = md
	defer func() { e.req.Metadata = nil }()

	return marshalSnappy(&e.req, &e.proto, &e.out)
}

// sizedMarshaler is a generated protobuf message.
type sizedMarshaler interface {
	Size() int
	MarshalToSizedBuffer([]byte) (int, error)
}

// marshalSnappy marshals m into *proto and snappy-compresses (block format) it into *out,
// growing both buffers as needed; the result is valid until they are reused.
func marshalSnappy(m sizedMarshaler, proto, out *[]byte) ([]byte, error) {
	size := m.Size()
	if cap(*proto) < size {
		*proto = make([]byte, size)
	}
	n, err := m.MarshalToSizedBuffer((*proto)[:size])
	if err != nil {
		return nil, fmt.Errorf("marshalling write request: %w", err)
	}
	if n != size {
		return nil, fmt.Errorf("marshalling write request: wrote %d bytes, expected %d", n, size)
	}
	limit := snappy.MaxEncodedLen(size)
	if limit < 0 {
		return nil, fmt.Errorf("write request of %d bytes is too large for snappy", size)
	}
	if cap(*out) < limit {
		*out = make([]byte, limit)
	}
	return snappy.Encode((*out)[:cap(*out)], (*proto)[:size]), nil
}

// LetGo forgets the buffer of the last body returned, which a request may still be reading
// (Body.Wait): the next call writes into a new one.
func (e *Encoder) LetGo() { e.out = nil }

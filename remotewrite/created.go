package remotewrite

import (
	"encoding/binary"

	"github.com/prometheus/prometheus/prompb"
)

// createdField is the TimeSeries field number under which a series' created timestamp (ms)
// travels in the Remote Write 1.0 bodies cardinal writes for itself: WAL records and
// requests forwarded to peers. 1.0 has no field for it (2.0 has created_timestamp); it sits
// far above the fields 1.0 defines, and a receiver that does not know it skips it, as
// protobuf requires, so such a body is still an ordinary 1.0 request.
const createdField = 1000

// CreatedTimestamp returns the created timestamp (ms) a decoded series carries, or 0 when
// it has none. A 2.0 series gets it from created_timestamp; a 1.0 one from cardinal's own
// field (see createdField), kept in the series' unrecognized bytes so that the generated
// marshallers write it out again wherever the series goes.
func CreatedTimestamp(ts *prompb.TimeSeries) int64 {
	b := ts.XXX_unrecognized
	for i := 0; i < len(b); {
		num, wt, j := tagAt(b, i)
		if j < 0 {
			return 0
		}
		if num == createdField && wt == wireVarint {
			v, e := varintAt(b, j, wt)
			if e < 0 {
				return 0
			}
			return int64(v)
		}
		if i = skipField(b, j, num, wt); i < 0 {
			return 0
		}
	}
	return 0
}

// appendCreated appends the encoded created-timestamp field for ct to buf.
func appendCreated(buf []byte, ct int64) []byte {
	buf = binary.AppendUvarint(buf, createdField<<3|wireVarint)
	return binary.AppendUvarint(buf, uint64(ct))
}

// SetCreatedTimestamp makes ts carry created timestamp ct (ms; 0 removes it), replacing
// whatever unrecognized fields it had.
func SetCreatedTimestamp(ts *prompb.TimeSeries, ct int64) {
	if ct == 0 {
		ts.XXX_unrecognized = nil
		return
	}
	ts.XXX_unrecognized = appendCreated(nil, ct)
}

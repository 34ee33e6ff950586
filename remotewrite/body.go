package remotewrite

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"time"
)

// Body is the body of a POST whose bytes the caller writes again for a later request: an
// encoder's buffer, reused from batch to batch. net/http may go on reading a request's body
// after Client.Do has returned: when the receiver answers before it has read the whole body,
// or when the request times out while the body is being written. Writing the buffer then
// puts a corrupt body on the wire, which the receiver refuses or, worse, decodes as other
// data. The transport closes every body it was given once it is done with it; Wait waits
// for that before the buffer is written again.
type Body struct {
	buf []byte

	mu   sync.Mutex
	open int           // readers the transport has not closed
	idle chan struct{} // made by a Wait that found readers open; closed when none is left
}

// NewRequest returns a POST of buf to url, with its Content-Length, and the Body to Wait on
// before buf is written again. The request can be replayed on a new connection by the
// transport (GetBody), and every replay is waited for too.
func NewRequest(ctx context.Context, url string, buf []byte) (*http.Request, *Body, error) {
	b := &Body{buf: buf}
	r := b.reader()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, r)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	req.ContentLength = int64(len(buf))
	req.GetBody = func() (io.ReadCloser, error) { return b.reader(), nil }
	return req, b, nil
}

// reader returns a new reader of the body, open until the transport closes it.
func (b *Body) reader() io.ReadCloser {
	b.mu.Lock()
	b.open++
	b.mu.Unlock()
	r := &bodyReader{done: b.closed}
	r.Reset(b.buf)
	return r
}

// closed notes that the transport closed one reader.
func (b *Body) closed() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open--; b.open == 0 && b.idle != nil {
		close(b.idle)
		b.idle = nil
	}
}

// Wait waits up to d for the transport to close every reader of the body, and reports
// whether it did: when false, the buffer is still being read and must not be written again
// (the caller lets it go and writes the next body into a new one). Call it once Client.Do
// has returned, whatever it returned: the transport opens no reader after that. In the
// common case every reader is closed already, and Wait returns at once.
func (b *Body) Wait(d time.Duration) bool {
	b.mu.Lock()
	if b.open == 0 {
		b.mu.Unlock()
		return true
	}
	if b.idle == nil {
		b.idle = make(chan struct{})
	}
	idle := b.idle
	b.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-idle:
		return true
	case <-t.C:
		return false
	}
}

// bodyReader is one reader of a Body; Close marks it done, once.
type bodyReader struct {
	bytes.Reader
	once sync.Once
	done func()
}

// Close implements io.Closer.
func (r *bodyReader) Close() error {
	r.once.Do(r.done)
	return nil
}

// BodyWait bounds Body.Wait for the senders: net/http closes a request body within
// milliseconds of a response or a cancelled request; a body still open after this is left
// to the transport and its buffer let go.
const BodyWait = time.Second

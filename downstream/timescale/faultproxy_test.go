package timescale

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// faultProxy sits between the sink and PostgreSQL on loopback and, when armed, loses the
// server's answer to the next transaction that inserted rows: it forwards everything up to
// the INSERT's completion but cuts the connection instead of forwarding the ReadyForQuery
// that follows the commit. The sink then sees a connection error for a batch that is in fact
// committed, which is exactly the retry that must not insert anything twice. The DSN through
// it must use sslmode=disable (the proxy parses the plain protocol).
type faultProxy struct {
	ln     net.Listener
	target string
	armed  atomic.Bool
	cuts   chan struct{} // receives one value per lost answer
	wg     sync.WaitGroup
}

func startFaultProxy(tb testing.TB, target string) *faultProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &faultProxy{ln: ln, target: target, cuts: make(chan struct{}, 16)}
	p.wg.Go(p.accept)
	tb.Cleanup(func() {
		ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *faultProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// loseNextCommitAnswer arms the proxy for one cut.
func (p *faultProxy) loseNextCommitAnswer() { p.armed.Store(true) }

func (p *faultProxy) accept() {
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		conns.Go(func() {
			io.Copy(server, client)
			server.Close()
		})
		conns.Go(func() {
			p.forwardAnswers(client, server)
			client.Close()
			server.Close()
		})
	}
}

// forwardAnswers copies backend messages to the client, watching for an INSERT that inserted
// rows followed by ReadyForQuery.
func (p *faultProxy) forwardAnswers(client, server net.Conn) {
	r := bufio.NewReader(server)
	inserted := false
	header := make([]byte, 5)
	for {
		if _, err := io.ReadFull(r, header); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint32(header[1:])-4)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		switch header[0] {
		case 'C': // CommandComplete "INSERT 0 <rows>"
			tag := strings.TrimRight(string(body), "\x00")
			if strings.HasPrefix(tag, "INSERT ") && !strings.HasSuffix(tag, " 0") {
				inserted = true
			}
		case 'Z': // ReadyForQuery: the transaction is over (committed, if it inserted)
			if inserted && p.armed.CompareAndSwap(true, false) {
				p.cuts <- struct{}{}
				return
			}
			inserted = false
		}
		if _, err := client.Write(append(header, body...)); err != nil {
			return
		}
	}
}

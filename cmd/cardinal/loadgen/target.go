package loadgen

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// errRemoteTarget is returned for a target outside the loopback range without --allow-remote:
// load goes only to this machine unless the operator says otherwise.
var errRemoteTarget = errors.New("target is not a loopback address (pass --allow-remote to load another host)")

// checkTarget refuses a URL whose host is not localhost or a loopback IP literal. Host names
// are not resolved here: the dialer checks the address it actually connects to.
func checkTarget(u *url.URL, allowRemote bool) error {
	if allowRemote {
		return nil
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Unmap().IsLoopback() {
		return nil
	}
	return fmt.Errorf("%q: %w", host, errRemoteTarget)
}

// loopbackOnly is a net.Dialer Control function that refuses connections to non-loopback
// addresses, so that neither name resolution nor a redirect can send load elsewhere.
func loopbackOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Unmap().IsLoopback() {
		return fmt.Errorf("dial %s: %w", address, errRemoteTarget)
	}
	return nil
}

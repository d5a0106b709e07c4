package httpx

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// LimitPerAddress wraps ln so that one client address holds at most max
// connections at once: a further connection from it is closed as soon as
// it is accepted (logged at most once a minute per listener). Without it
// one address could take every file descriptor of the process. Addresses
// for which exempt is true (loopback, trusted proxies, whose connections
// carry many clients) are not limited. max <= 0 returns ln as it is.
func LimitPerAddress(ln net.Listener, max int, exempt func(netip.Addr) bool, log *slog.Logger) net.Listener {
	if max <= 0 {
		return ln
	}
	return &limitListener{Listener: ln, max: max, exempt: exempt, log: log, open: map[netip.Addr]int{}}
}

type limitListener struct {
	net.Listener
	max     int
	exempt  func(netip.Addr) bool
	log     *slog.Logger
	mu      sync.Mutex
	open    map[netip.Addr]int
	warned  time.Time
	refused int
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
		if err != nil {
			return c, nil // not an IP connection (a test's pipe): nothing to count
		}
		addr := ap.Addr().Unmap()
		if l.exempt != nil && l.exempt(addr) {
			return c, nil
		}
		if !l.take(addr) {
			_ = c.Close()
			continue
		}
		return &limitedConn{Conn: c, release: sync.OnceFunc(func() { l.release(addr) })}, nil
	}
}

func (l *limitListener) take(addr netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[addr] >= l.max {
		l.refused++
		if now := time.Now(); now.Sub(l.warned) >= time.Minute {
			l.log.Warn("connections refused: too many from one address", "ip", addr.String(),
				"max_per_address", l.max, "refused_since_last_warning", l.refused)
			l.warned, l.refused = now, 0
		}
		return false
	}
	l.open[addr]++
	return true
}

func (l *limitListener) release(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[addr]--; l.open[addr] <= 0 {
		delete(l.open, addr)
	}
}

type limitedConn struct {
	net.Conn
	release func()
}

func (c *limitedConn) Close() error {
	c.release()
	return c.Conn.Close()
}

package integration

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// netLab is a bridge in the root network namespace and, behind it, one
// network namespace per host, each with its own address: processes of the
// test run in them, so one can be cut off the network. The root side
// reaches every host; a host reaches the root side's loopback services
// (PostgreSQL, S3, reel's other services) through forwarders the lab
// listens with on the bridge's address. It needs root; without it the test
// is skipped, loudly, unless CI=true, where it fails.
type netLab struct {
	t      *testing.T
	id     string // a short random name part
	prefix string // 10.a.b
	bridge string
	mu     sync.Mutex
	fwd    map[string]string // 127.0.0.1 port → forwarder address
	lns    []net.Listener
	conns  []net.Conn
}

// host is one network namespace of the lab.
type host struct {
	ns, addr, veth string
}

func newNetLab(t *testing.T) *netLab {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "not root"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "no ip command (apt-get install iproute2)"
	}
	if why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("network namespaces needed but %s and CI is set", why)
		}
		t.Skipf("NETWORK NAMESPACES NOT AVAILABLE (%s): the replica fail-over test is SKIPPED", why)
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	l := &netLab{t: t, id: hex.EncodeToString(b), fwd: map[string]string{}}
	l.prefix = fmt.Sprintf("10.%d.%d", 200+mrand.IntN(50), mrand.IntN(250))
	l.bridge = "rlb" + l.id
	t.Cleanup(l.close)
	l.ip("link", "add", "name", l.bridge, "type", "bridge")
	l.ip("addr", "add", l.prefix+".1/24", "dev", l.bridge)
	l.ip("link", "set", l.bridge, "up")
	return l
}

func (l *netLab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// gatewayAddr is the root side's address on the bridge.
func (l *netLab) gatewayAddr() string { return l.prefix + ".1" }

// subnet is the lab's network, to trust as proxies.
func (l *netLab) subnet() string { return l.prefix + ".0/24" }

// host makes namespace i (1..200) with address prefix.(10+i).
func (l *netLab) host(i int) host {
	l.t.Helper()
	h := host{ns: fmt.Sprintf("rl%s-%d", l.id, i), addr: fmt.Sprintf("%s.%d", l.prefix, 10+i), veth: fmt.Sprintf("rlv%s%d", l.id, i)}
	peer := fmt.Sprintf("rlp%s%d", l.id, i)
	l.ip("netns", "add", h.ns)
	l.ip("link", "add", h.veth, "type", "veth", "peer", "name", peer)
	l.ip("link", "set", peer, "netns", h.ns)
	l.ip("link", "set", h.veth, "master", l.bridge)
	l.ip("link", "set", h.veth, "up")
	l.ip("-n", h.ns, "addr", "add", h.addr+"/24", "dev", peer)
	l.ip("-n", h.ns, "link", "set", peer, "up")
	l.ip("-n", h.ns, "link", "set", "lo", "up")
	l.ip("-n", h.ns, "route", "add", "default", "via", l.gatewayAddr())
	return h
}

// cut takes the host off the network (its link on the bridge goes down:
// packets are dropped, nothing is refused); heal brings it back.
func (l *netLab) cut(h host)  { l.ip("link", "set", h.veth, "down") }
func (l *netLab) heal(h host) { l.ip("link", "set", h.veth, "up") }

// loopback matches a loopback address with its port, in a URL or in a
// query parameter (where the colon is escaped).
var loopback = regexp.MustCompile(`127\.0\.0\.1(:|%3A|%3a)([0-9]+)`)

// reach rewrites an environment variable for a process in a namespace:
// every loopback address in its value becomes a forwarder to it.
func (l *netLab) reach(kv string) string {
	return loopback.ReplaceAllStringFunc(kv, func(m string) string {
		sub := loopback.FindStringSubmatch(m)
		fwd := l.forwarder(sub[2])
		host, port, _ := net.SplitHostPort(fwd)
		return host + sub[1] + port
	})
}

// forwarder returns the address on the bridge that forwards to
// 127.0.0.1:port, listening on it first if needed.
func (l *netLab) forwarder(port string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a, ok := l.fwd[port]; ok {
		return a
	}
	ln, err := net.Listen("tcp", l.gatewayAddr()+":0")
	if err != nil {
		l.t.Fatal(err)
	}
	l.lns = append(l.lns, ln)
	target := "127.0.0.1:" + port
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			l.mu.Lock()
			l.conns = append(l.conns, in, out)
			l.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.(*net.TCPConn).CloseWrite() }()
			go func() { _, _ = io.Copy(in, out); in.(*net.TCPConn).CloseWrite() }()
		}
	}()
	l.fwd[port] = ln.Addr().String()
	return l.fwd[port]
}

// inNamespace moves a process of the cluster into h: it listens on h's
// address and reaches everything else through the lab's forwarders.
func (l *netLab) inNamespace(p *proc, h host) {
	_, port, _ := net.SplitHostPort(p.addr)
	p.addr = net.JoinHostPort(h.addr, port)
	env := make([]string, 0, len(p.env)+1)
	for _, kv := range p.env {
		if !strings.HasPrefix(kv, "REEL_HTTP_ADDR=") {
			env = append(env, l.reach(kv))
		}
	}
	p.env = append(env, "REEL_HTTP_ADDR="+p.addr)
	p.wrap = []string{"ip", "netns", "exec", h.ns}
}

func (l *netLab) close() {
	l.mu.Lock()
	for _, ln := range l.lns {
		ln.Close()
	}
	for _, c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	// Deleting a namespace deletes its end of each veth pair, and so the
	// pair; the bridge goes last. Errors are ignored: a half-made lab has
	// less to delete.
	out, _ := exec.Command("ip", "-o", "link", "show", "master", l.bridge).Output()
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			_ = exec.Command("ip", "link", "del", name).Run()
		}
	}
	nss, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(nss), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "rl"+l.id+"-") {
			_ = exec.Command("ip", "netns", "del", f[0]).Run()
		}
	}
	_ = exec.Command("ip", "link", "del", l.bridge).Run()
}

package app

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"

	"github.com/reel-video/reel/internal/config"
	"github.com/reel-video/reel/internal/platform/blob"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// Summary is what an operator needs to see at start, as slog attributes:
// the target, the data dir, the database of each service this process runs
// (engine and URL, password masked; one "database" when they share one)
// and, with the videos service, the blob store (secret key masked). The
// full configuration is logged at debug level.
func (a *App) Summary() []any {
	out := []any{"target", strings.Join(a.cfg.Targets, ","), "data_dir", a.cfg.DataDir}
	var svcs []string
	urls := map[string]bool{}
	for _, s := range config.Services {
		if a.present[s] || (s == "videos" && a.present["transcode"]) {
			svcs = append(svcs, s)
			urls[a.cfg.Databases[s]] = true
		}
	}
	if len(urls) == 1 {
		out = append(out, "database", describeDB(a.cfg.Databases[svcs[0]]))
	} else {
		for _, s := range svcs {
			out = append(out, s+"_database", describeDB(a.cfg.Databases[s]))
		}
	}
	if a.present["videos"] || a.present["transcode"] {
		out = append(out, "blobs", describeBlobs(a.cfg.Videos.BlobURL))
	}
	return out
}

// describeDB names the engine and the database, without its password:
// "sqlite data/reel.db", "postgresql postgres://reel:xxxxx@db:5432/reel".
func describeDB(url string) string {
	l := strings.ToLower(url)
	if strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://") {
		return "postgresql " + sqldb.Redacted(url)
	}
	return "sqlite " + strings.TrimPrefix(sqldb.Redacted(url), "sqlite://")
}

// describeBlobs names the blob store: "files data/blobs" or
// "s3 s3://bucket?endpoint=…" with its secret key masked.
func describeBlobs(url string) string {
	if strings.HasPrefix(strings.ToLower(url), "s3://") {
		return "s3 " + blob.RedactURL(url)
	}
	return "files " + url
}

// OpenURL is the URL a person opens for a server listening on addr: an
// unspecified host (":8080", "0.0.0.0:8080", "[::]:8080") becomes
// localhost, an IPv6 address gets its brackets, and TLS makes it https.
func OpenURL(addr string, tls bool) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/"
}

// listen opens a TCP listener on addr. When it cannot, the error names the
// setting to change (env and -flag), in one line: a second `reel serve`
// on a laptop, or another program on :8080, is the usual cause.
func listen(addr, env, flag string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("cannot listen on %s: %w; stop the program using it or choose another address with %s or -%s, e.g. %s=%s",
			addr, syscall.EADDRINUSE, env, flag, env, nextPort(addr))
	}
	return nil, fmt.Errorf("cannot listen on %s (set by %s or -%s): %w", addr, env, flag, err)
}

// nextPort suggests the address one port up: ":8080" gives ":8081".
func nextPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	n, perr := strconv.Atoi(port)
	if err != nil || perr != nil || n < 1 || n >= 65535 {
		return ":8081"
	}
	return net.JoinHostPort(host, strconv.Itoa(n+1))
}

// Package config holds reel's configuration: one Config with a sub-struct
// per concern, read from REEL_* environment variables and command-line flags
// (flags win), with defaults that run with no setup at all.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/reel-video/reel/internal/platform/blob"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// Services are the names of reel's services, in the order they start.
var Services = []string{"users", "logs", "storage", "usage", "videos"}

// Config is the whole configuration of a reel process.
type Config struct {
	Targets []string
	DataDir string
	Log     struct{ Level, Format string }
	HTTP    HTTP
	// Databases maps a service to its database URL (the per-service
	// override, else the shared REEL_DATABASE_URL).
	Databases map[string]string
	// URLs maps a service to its base URL, for split mode: the first of
	// its Replicas, which service-to-service clients use.
	URLs map[string]string
	// Replicas maps a service to the base URLs of all its replicas
	// (REEL_<SERVICE>_URL is a comma list), among which the gateway
	// balances and fails over.
	Replicas map[string][]string
	// GatewayTryTimeout is how long the gateway waits for one replica's
	// answer to an idempotent request before it tries another.
	GatewayTryTimeout time.Duration
	// DBMaxConns is the number of reader connections per database
	// (sqldb.Options); 0 keeps sqldb's default.
	DBMaxConns int
	// DBQueueConns is the size of the job queue's PostgreSQL pool
	// (sqldb.Options.QueueConns); 0 keeps sqldb's default.
	DBQueueConns int
	// ServiceKey signs service credentials in split mode.
	ServiceKey string
	Users      Users
	Logs       Logs
	Storage    Storage
	Usage      Usage
	Videos     Videos
}

// HTTP configures the process's HTTP server.
type HTTP struct {
	Addr            string
	TLSCert, TLSKey string
	TrustedProxies  []netip.Prefix
	CORSOrigins     []string
	ShutdownTimeout time.Duration
	// BodyMinBytes in every BodyWindow is the slowest a request body may
	// arrive before the request is cut off with 408.
	BodyMinBytes int64
	BodyWindow   time.Duration
	// MaxConnsPerIP bounds one client address's open connections
	// (loopback and trusted proxies are exempt; 0: no bound).
	MaxConnsPerIP int
	// MetricsAddr serves /metrics on a private listener of its own; the
	// public address answers /metrics to this machine only.
	MetricsAddr string
	// DebugAddr serves Go's pprof profiles on a listener of its own; empty
	// turns it off.
	DebugAddr string
}

// Users configures the users service.
type Users struct {
	AdminEmail, AdminPassword string
	AccessTTL, RefreshTTL     time.Duration
	HashConcurrency           int
	// Login throttling: failures allowed per account and per client
	// address within LoginWindow before further attempts get 429.
	LoginMaxPerAccount, LoginMaxPerIP int
	LoginMaxPerAccountAnywhere        int
	LoginWindow                       time.Duration
}

// Logs configures the activity log service.
type Logs struct {
	Retention time.Duration
}

// Storage configures the storage quota service.
type Storage struct {
	Quota int64 // bytes; -1 unlimited
}

// Usage configures the daily usage service.
type Usage struct {
	DailyUpload, DailyEgress int64 // bytes; -1 unlimited
}

// Videos configures the videos service.
type Videos struct {
	BlobURL        string
	MaxUploadSize  int64
	TrashRetention time.Duration
	SigningKey     string
	PlaybackTTL    time.Duration
	MediaChunk     int64
	// ReserveLease is how long an upload's reservations outlive the last
	// renewal by the process receiving it (see videos.Config).
	ReserveLease time.Duration
	// TranscodeWorkers is how many transcode jobs a process that works
	// the videos service's jobs runs at once; 0 on the videos target makes
	// it work none (another process, the transcode target, does).
	TranscodeWorkers int
	// Streaming makes HLS renditions and storyboards of every upload
	// (when ffmpeg is installed).
	Streaming bool
	// CheckEvery is how often the periodic consistency check runs (reel
	// check without -fix); 0 never.
	CheckEvery time.Duration
	// JobHeartbeat is how often a running transcode or storyboard job
	// tells the queue its process lives; after three missed, the queue
	// takes the job for one whose process died and runs it again.
	JobHeartbeat time.Duration
	// TusDir holds resumable uploads' partial bytes: a directory shared
	// by the videos replicas lets an upload resume on any of them.
	TusDir string
}

// option is one setting reachable as a flag and as an environment variable.
type option struct {
	flag, env, usage string
	secret           secrecy
	value            flag.Value
}

// secrecy says how an option is shown in the printed configuration.
type secrecy int

const (
	public        secrecy = iota
	secret                // never shown
	secretDBURL           // a database URL, shown without its password
	secretBlobURL         // a blob store URL, shown without its secret key
)

type binder struct {
	fs      *flag.FlagSet
	opts    []*option
	getenv  func(string) string
	envErrs []error
}

func (b *binder) bind(v flag.Value, name, env, def, usage string, sec secrecy) {
	if err := v.Set(def); err != nil {
		panic(fmt.Sprintf("config: bad default for %s: %v", name, err)) // a programming error
	}
	if s := b.getenv(env); s != "" {
		if err := v.Set(s); err != nil {
			b.envErrs = append(b.envErrs, fmt.Errorf("%s=%q: %w", env, s, err))
		}
	}
	b.fs.Var(v, name, usage+" ($"+env+")")
	b.opts = append(b.opts, &option{flag: name, env: env, usage: usage, secret: sec, value: v})
}

// Load reads the environment (through getenv) and parses args (flags after
// the subcommand). extra may add a subcommand's own flags to the same set.
// The returned Config is validated.
func Load(name string, args []string, getenv func(string) string, stderr io.Writer, extra ...func(*flag.FlagSet)) (*Config, *Printer, error) {
	c := &Config{Databases: map[string]string{}, URLs: map[string]string{}, Replicas: map[string][]string{}}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	b := &binder{fs: fs, getenv: getenv}

	var targets, proxies, origins stringList
	b.bind(&targets, "target", "REEL_TARGET", "all", "modules to run: all, users, videos, transcode, storage, usage, logs, gateway, or a comma list", public)
	b.bind((*str)(&c.HTTP.Addr), "http-addr", "REEL_HTTP_ADDR", ":8080", "HTTP listen address", public)
	b.bind((*str)(&c.DataDir), "data-dir", "REEL_DATA_DIR", "./data", "directory for the embedded database and video files", public)
	b.bind((*str)(&c.Log.Level), "log-level", "REEL_LOG_LEVEL", "info", "debug, info, warn or error", public)
	b.bind((*str)(&c.Log.Format), "log-format", "REEL_LOG_FORMAT", "auto", "text (lines for people), json (for log collectors) or auto: text on a terminal, else json", public)
	b.bind((*str)(&c.HTTP.TLSCert), "tls-cert", "REEL_TLS_CERT", "", "TLS certificate file (serves HTTPS when set with -tls-key)", public)
	b.bind((*str)(&c.HTTP.TLSKey), "tls-key", "REEL_TLS_KEY", "", "TLS private key file", public)
	b.bind(&proxies, "trusted-proxies", "REEL_TRUSTED_PROXIES", "", "comma list of CIDRs whose X-Forwarded-For is believed", public)
	b.bind(&origins, "cors-origins", "REEL_CORS_ORIGINS", "", "comma list of browser origins allowed by CORS", public)
	b.bind((*dur)(&c.HTTP.ShutdownTimeout), "shutdown-timeout", "REEL_SHUTDOWN_TIMEOUT", "30s", "how long to drain in-flight requests on stop", public)
	b.bind((*size)(&c.HTTP.BodyMinBytes), "body-min-bytes", "REEL_BODY_MIN_BYTES", "1KiB", "a request body must bring at least this many bytes in every -body-window, or it is cut off with 408 (0: no limit)", public)
	b.bind((*dur)(&c.HTTP.BodyWindow), "body-window", "REEL_BODY_WINDOW", "10s", "the window of -body-min-bytes", public)
	b.bind((*intv)(&c.HTTP.MaxConnsPerIP), "max-conns-per-ip", "REEL_MAX_CONNS_PER_IP", "256", "open connections one client address may hold (loopback and trusted proxies exempt; 0: no bound)", public)
	b.bind((*str)(&c.HTTP.MetricsAddr), "metrics-addr", "REEL_METRICS_ADDR", "", "private address serving Prometheus metrics at /metrics (e.g. :9090 in a pod); the public address answers /metrics to this machine only", public)
	b.bind((*str)(&c.HTTP.DebugAddr), "debug-addr", "REEL_DEBUG_ADDR", "", "address serving Go's pprof profiles at /debug/pprof/ (off when empty; keep it private, e.g. 127.0.0.1:6060: profiles show memory)", public)
	b.bind((*intv)(&c.DBMaxConns), "db-max-conns", "REEL_DB_MAX_CONNS", "0", "reader connections per database (0: 4×cores within 8–14 on PostgreSQL, beside half as many writers, 2–6; max(4, 2×cores) on SQLite, beside its one writer)", public)
	b.bind((*intv)(&c.DBQueueConns), "db-queue-conns", "REEL_DB_QUEUE_CONNS", "0", "connections of the job queue's own pool in the videos database on PostgreSQL (0: as many as the writers, 2–6; SQLite's queue shares its one writer)", public)

	var dbURL string
	b.bind((*str)(&dbURL), "database-url", "REEL_DATABASE_URL", "", "database for every service: postgres://… or a SQLite file (default <data-dir>/reel.db)", secretDBURL)
	perDB, bases := map[string]*string{}, map[string]*string{}
	for _, s := range Services {
		perDB[s], bases[s] = new(string), new(string)
		up := strings.ToUpper(s)
		b.bind((*str)(perDB[s]), s+"-database-url", "REEL_"+up+"_DATABASE_URL", "", "database of the "+s+" service (default: -database-url)", secretDBURL)
		b.bind((*str)(bases[s]), s+"-url", "REEL_"+up+"_URL", "", "base URL of the "+s+" service when it runs in another process (a comma list of its replicas' URLs: the gateway balances among them and fails over; other services use the first)", public)
	}
	b.bind((*dur)(&c.GatewayTryTimeout), "gateway-try-timeout", "REEL_GATEWAY_TRY_TIMEOUT", "10s", "how long the gateway waits for one replica's answer headers to an idempotent request (GET, HEAD) before it tries the next replica (0: no bound)", public)
	var serviceKeyFile string
	b.bind((*str)(&c.ServiceKey), "service-key", "REEL_SERVICE_KEY", "", "shared key that signs service credentials in split mode", secret)
	b.bind((*str)(&serviceKeyFile), "service-key-file", "REEL_SERVICE_KEY_FILE", "", "file holding the service key", public)

	b.bind((*str)(&c.Users.AdminEmail), "admin-email", "REEL_ADMIN_EMAIL", "", "create this admin account on first start", public)
	b.bind((*str)(&c.Users.AdminPassword), "admin-password", "REEL_ADMIN_PASSWORD", "", "password of the bootstrap admin", secret)
	b.bind((*dur)(&c.Users.AccessTTL), "access-token-ttl", "REEL_ACCESS_TOKEN_TTL", "15m", "lifetime of access tokens", public)
	b.bind((*dur)(&c.Users.RefreshTTL), "refresh-token-ttl", "REEL_REFRESH_TOKEN_TTL", "30d", "lifetime of refresh tokens", public)
	b.bind((*intv)(&c.Users.HashConcurrency), "hash-concurrency", "REEL_HASH_CONCURRENCY", strconv.Itoa(runtime.NumCPU()), "password hashes computed at once (each takes 19 MiB)", public)
	b.bind((*intv)(&c.Users.LoginMaxPerAccount), "login-max-per-account", "REEL_LOGIN_MAX_PER_ACCOUNT", "5", "failed logins per account from one client address per window before 429", public)
	b.bind((*intv)(&c.Users.LoginMaxPerAccountAnywhere), "login-max-per-account-anywhere", "REEL_LOGIN_MAX_PER_ACCOUNT_ANYWHERE", "50", "failed logins per account from all addresses together per window before 429", public)
	b.bind((*intv)(&c.Users.LoginMaxPerIP), "login-max-per-ip", "REEL_LOGIN_MAX_PER_IP", "20", "failed logins per client address per window before 429", public)
	b.bind((*dur)(&c.Users.LoginWindow), "login-window", "REEL_LOGIN_WINDOW", "15m", "login throttling window", public)

	b.bind((*dur)(&c.Logs.Retention), "log-retention", "REEL_LOG_RETENTION", "90d", "how long activity events are kept", public)
	b.bind((*size)(&c.Storage.Quota), "storage-quota", "REEL_STORAGE_QUOTA", "50MiB", "default per-user storage quota (-1 unlimited)", public)
	b.bind((*size)(&c.Usage.DailyUpload), "daily-upload-limit", "REEL_DAILY_UPLOAD_LIMIT", "100MiB", "default per-user daily upload volume (-1 unlimited)", public)
	b.bind((*size)(&c.Usage.DailyEgress), "daily-egress-limit", "REEL_DAILY_EGRESS_LIMIT", "1GiB", "default per-user daily viewing volume (-1 unlimited)", public)

	b.bind((*str)(&c.Videos.BlobURL), "blob-url", "REEL_BLOB_URL", "", "where video bytes live: a directory or s3://bucket?endpoint=… (default <data-dir>/blobs)", secretBlobURL)
	b.bind((*size)(&c.Videos.MaxUploadSize), "max-upload-size", "REEL_MAX_UPLOAD_SIZE", "2GiB", "largest single upload", public)
	b.bind((*dur)(&c.Videos.TrashRetention), "trash-retention", "REEL_TRASH_RETENTION", "30d", "how long deleted videos stay restorable", public)
	b.bind((*str)(&c.Videos.SigningKey), "url-signing-key", "REEL_URL_SIGNING_KEY", "", "key for signed media URLs (default: generated once and kept in the videos database)", secret)
	b.bind((*dur)(&c.Videos.PlaybackTTL), "playback-ttl", "REEL_PLAYBACK_TTL", "4h", "lifetime of signed playback URLs", public)
	b.bind((*dur)(&c.Videos.ReserveLease), "reserve-lease", "REEL_RESERVE_LEASE", "2m", "how long an upload's reservations outlive the last renewal by the process receiving it (renewed every quarter of it): a killed process's holds come back after this and the next sweep", public)
	b.bind((*size)(&c.Videos.MediaChunk), "media-chunk", "REEL_MEDIA_CHUNK", "8MiB", "largest answer to an open-ended range request", public)
	b.bind((*boolv)(&c.Videos.Streaming), "streaming", "REEL_STREAMING", "on", "make adaptive-streaming renditions and storyboards of every upload (on/off; needs ffmpeg)", public)
	b.bind((*dur)(&c.Videos.CheckEvery), "check-interval", "REEL_CHECK_INTERVAL", "24h", "how often the consistency check runs as a job, reporting in the log and metrics (0: never)", public)
	b.bind((*intv)(&c.Videos.TranscodeWorkers), "transcode-workers", "REEL_TRANSCODE_WORKERS", strconv.Itoa(max(1, runtime.NumCPU()/2)), "transcode jobs run at once by a process working the videos jobs (0: the videos target works no jobs, a transcode target does)", public)

	b.bind((*dur)(&c.Videos.JobHeartbeat), "job-heartbeat", "REEL_JOB_HEARTBEAT", "10s", "how often a running transcode or storyboard job says its process lives; three missed and another worker takes the job over", public)
	b.bind((*str)(&c.Videos.TusDir), "tus-dir", "REEL_TUS_DIR", "", "directory of resumable uploads' partial bytes (default <data-dir>/uploads/tus); share it among videos replicas so that an upload resumes on any of them", public)

	for _, f := range extra {
		f(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	if len(b.envErrs) > 0 {
		return nil, nil, fmt.Errorf("invalid configuration: %w", oneLine(b.envErrs))
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c.Targets = targets
	c.HTTP.CORSOrigins = origins
	for _, p := range proxies {
		pfx, err := parsePrefix(p)
		if err != nil {
			return nil, nil, fmt.Errorf("invalid configuration: REEL_TRUSTED_PROXIES: %w", err)
		}
		c.HTTP.TrustedProxies = append(c.HTTP.TrustedProxies, pfx)
	}
	if dbURL == "" {
		dbURL = "sqlite://" + filepath.Join(c.DataDir, "reel.db")
	}
	for s, u := range perDB {
		c.Databases[s] = dbURL
		if *u != "" {
			c.Databases[s] = *u
		}
		for _, u := range strings.Split(*bases[s], ",") {
			if u = strings.TrimRight(strings.TrimSpace(u), "/"); u != "" {
				c.Replicas[s] = append(c.Replicas[s], u)
			}
		}
		if len(c.Replicas[s]) > 0 {
			c.URLs[s] = c.Replicas[s][0]
		}
	}
	if c.Videos.BlobURL == "" {
		c.Videos.BlobURL = filepath.Join(c.DataDir, "blobs")
	}
	if c.Videos.TusDir == "" {
		c.Videos.TusDir = filepath.Join(c.DataDir, "uploads", "tus")
	}
	if serviceKeyFile != "" && c.ServiceKey == "" {
		k, err := os.ReadFile(serviceKeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("invalid configuration: REEL_SERVICE_KEY_FILE: %w", err)
		}
		c.ServiceKey = strings.TrimSpace(string(k))
	}
	if err := c.Validate(); err != nil {
		return nil, nil, fmt.Errorf("invalid configuration: %w", err)
	}
	return c, &Printer{opts: b.opts}, nil
}

// Validate checks values that parse but make no sense together.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Targets) == 0 {
		errs = append(errs, errors.New("-target: at least one module is required"))
	}
	if (c.HTTP.TLSCert == "") != (c.HTTP.TLSKey == "") {
		errs = append(errs, errors.New("REEL_TLS_CERT and REEL_TLS_KEY must be set together"))
	}
	switch strings.ToLower(c.Log.Format) {
	case "auto", "json", "text":
	default:
		errs = append(errs, fmt.Errorf("REEL_LOG_FORMAT=%q: must be auto, text or json", c.Log.Format))
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("REEL_LOG_LEVEL=%q: must be debug, info, warn or error", c.Log.Level))
	}
	if c.HTTP.BodyMinBytes < 0 || c.HTTP.BodyMinBytes > 0 && c.HTTP.BodyWindow < time.Second {
		errs = append(errs, fmt.Errorf("REEL_BODY_MIN_BYTES=%d, REEL_BODY_WINDOW=%s: the bytes must be ≥ 0 and the window at least 1s", c.HTTP.BodyMinBytes, c.HTTP.BodyWindow))
	}
	if (c.Users.AdminEmail == "") != (c.Users.AdminPassword == "") {
		errs = append(errs, errors.New("REEL_ADMIN_EMAIL and REEL_ADMIN_PASSWORD must be set together"))
	}
	if c.Users.AdminPassword != "" && len(c.Users.AdminPassword) < 8 {
		errs = append(errs, errors.New("REEL_ADMIN_PASSWORD must have at least 8 characters"))
	}
	if c.Users.AccessTTL < time.Minute || c.Users.AccessTTL > 24*time.Hour {
		errs = append(errs, fmt.Errorf("REEL_ACCESS_TOKEN_TTL=%s: must be between 1m and 24h", c.Users.AccessTTL))
	}
	if c.Users.RefreshTTL < c.Users.AccessTTL {
		errs = append(errs, errors.New("REEL_REFRESH_TOKEN_TTL must not be shorter than the access token TTL"))
	}
	if c.Users.HashConcurrency < 1 {
		errs = append(errs, errors.New("REEL_HASH_CONCURRENCY must be at least 1"))
	}
	if c.DBMaxConns < 0 {
		errs = append(errs, errors.New("REEL_DB_MAX_CONNS must not be negative"))
	}
	if c.DBQueueConns < 0 {
		errs = append(errs, errors.New("REEL_DB_QUEUE_CONNS must not be negative"))
	}
	if c.HTTP.DebugAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTP.DebugAddr); err != nil {
			errs = append(errs, fmt.Errorf("REEL_DEBUG_ADDR=%q: must be host:port", c.HTTP.DebugAddr))
		}
	}
	if c.Users.LoginMaxPerAccount < 1 || c.Users.LoginMaxPerIP < 1 || c.Users.LoginMaxPerAccountAnywhere < 1 || c.Users.LoginWindow <= 0 {
		errs = append(errs, errors.New("login throttling limits and window must be positive"))
	}
	if c.Logs.Retention < time.Hour {
		errs = append(errs, fmt.Errorf("REEL_LOG_RETENTION=%s: must be at least 1h", c.Logs.Retention))
	}
	if c.Videos.MaxUploadSize < 1 {
		errs = append(errs, errors.New("REEL_MAX_UPLOAD_SIZE must be positive"))
	}
	if c.Videos.MediaChunk < 64<<10 {
		errs = append(errs, errors.New("REEL_MEDIA_CHUNK must be at least 64KiB"))
	}
	if c.Videos.PlaybackTTL < time.Minute {
		errs = append(errs, errors.New("REEL_PLAYBACK_TTL must be at least 1m"))
	}
	if c.Videos.ReserveLease < time.Second || c.Videos.ReserveLease > 24*time.Hour {
		errs = append(errs, errors.New("REEL_RESERVE_LEASE must be between 1s and 24h"))
	}
	if c.Videos.JobHeartbeat < 100*time.Millisecond {
		errs = append(errs, errors.New("REEL_JOB_HEARTBEAT must be at least 100ms"))
	}
	if c.GatewayTryTimeout < 0 {
		errs = append(errs, errors.New("REEL_GATEWAY_TRY_TIMEOUT must not be negative"))
	}
	if c.Videos.TranscodeWorkers < 0 {
		errs = append(errs, errors.New("REEL_TRANSCODE_WORKERS must not be negative"))
	}
	if c.Videos.SigningKey != "" && len(c.Videos.SigningKey) < 32 {
		errs = append(errs, errors.New("REEL_URL_SIGNING_KEY must have at least 32 characters"))
	}
	if c.ServiceKey != "" && len(c.ServiceKey) < 32 {
		errs = append(errs, errors.New("REEL_SERVICE_KEY must have at least 32 characters"))
	}
	return oneLine(errs)
}

// oneLine joins errors with "; " so a bad configuration fails with one
// line, as an operator reading a crash-looping pod's log expects.
func oneLine(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

// Printer prints the effective configuration with secrets masked.
type Printer struct{ opts []*option }

// Pairs returns the effective settings as env name → value, secrets masked.
func (p *Printer) Pairs() map[string]string {
	m := make(map[string]string, len(p.opts))
	for _, o := range p.opts {
		v := o.value.String()
		switch {
		case v == "":
		case o.secret == secret:
			v = "xxxxx"
		case o.secret == secretDBURL:
			v = sqldb.Redacted(v)
		case o.secret == secretBlobURL:
			v = blob.RedactURL(v)
		}
		m[o.env] = v
	}
	return m
}

// Attrs returns the settings as alternating key/value pairs for slog, sorted.
func (p *Printer) Attrs() []any {
	m := p.Pairs()
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		out = append(out, k, m[k])
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

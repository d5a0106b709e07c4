package config_test

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/config"
)

func load(t *testing.T, env map[string]string, args ...string) (*config.Config, *config.Printer, error) {
	t.Helper()
	return config.Load("serve", args, func(k string) string { return env[k] }, io.Discard)
}

func TestDefaults(t *testing.T) {
	c, _, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Addr != ":8080" || c.DataDir != "./data" || strings.Join(c.Targets, ",") != "all" || c.Log.Format != "auto" || c.Log.Level != "info" {
		t.Fatalf("defaults %+v", c)
	}
	for _, s := range config.Services {
		if c.Databases[s] != "sqlite://data/reel.db" {
			t.Fatalf("%s database %q", s, c.Databases[s])
		}
	}
	if c.Storage.Quota != 50<<20 || c.Usage.DailyUpload != 100<<20 || c.Usage.DailyEgress != 1<<30 || c.Videos.MaxUploadSize != 2<<30 {
		t.Fatalf("limits %+v %+v", c.Storage, c.Usage)
	}
	if c.Logs.Retention != 90*24*time.Hour || c.Videos.TrashRetention != 30*24*time.Hour || c.Users.AccessTTL != 15*time.Minute {
		t.Fatal("durations")
	}
}

func TestEnvAndFlags(t *testing.T) {
	env := map[string]string{
		"REEL_HTTP_ADDR":           "127.0.0.1:9000",
		"REEL_DATABASE_URL":        "postgres://reel:hunter2@db:5432/reel",
		"REEL_VIDEOS_DATABASE_URL": "postgres://videos:pw@db2/videos",
		"REEL_STORAGE_QUOTA":       "-1",
		"REEL_DAILY_UPLOAD_LIMIT":  "2GiB",
		"REEL_TARGET":              "users,logs",
		"REEL_USERS_URL":           "http://users:8080/",
		"REEL_TRUSTED_PROXIES":     "10.0.0.0/8, 192.168.1.1",
		"REEL_ADMIN_EMAIL":         "root@example.com",
		"REEL_ADMIN_PASSWORD":      "very secret",
		"REEL_LOG_RETENTION":       "7d",
		"REEL_BLOB_URL":            "s3://clips?endpoint=s3:9000&access_key=AK&secret_key=s3cr3t",
	}
	c, p, err := load(t, env, "-http-addr", ":7000")
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Addr != ":7000" {
		t.Fatal("flags must win over the environment")
	}
	if c.Databases["users"] != env["REEL_DATABASE_URL"] || c.Databases["videos"] != env["REEL_VIDEOS_DATABASE_URL"] {
		t.Fatalf("databases %v", c.Databases)
	}
	if c.Storage.Quota != -1 || c.Usage.DailyUpload != 2<<30 || c.Logs.Retention != 7*24*time.Hour {
		t.Fatal("sizes")
	}
	if c.URLs["users"] != "http://users:8080" || len(c.HTTP.TrustedProxies) != 2 || strings.Join(c.Targets, "|") != "users|logs" {
		t.Fatalf("%v %v %v", c.URLs, c.HTTP.TrustedProxies, c.Targets)
	}
	// The printed configuration shows no secret.
	printed := strings.Join(strings.Fields(strings.Trim(strings.ReplaceAll(func() string {
		var b strings.Builder
		for k, v := range p.Pairs() {
			b.WriteString(k + "=" + v + " ")
		}
		return b.String()
	}(), "\n", " "), " ")), " ")
	for _, secret := range []string{"hunter2", "very secret", ":pw@", "s3cr3t"} {
		if strings.Contains(printed, secret) {
			t.Fatalf("secret %q printed: %s", secret, printed)
		}
	}
	if !strings.Contains(printed, "postgres://reel:xxxxx@db:5432/reel") {
		t.Fatalf("database URL should be shown masked: %s", printed)
	}
	if !strings.Contains(printed, "s3://clips?") || !strings.Contains(printed, "endpoint=s3%3A9000") {
		t.Fatalf("blob URL should show its bucket and endpoint: %s", printed)
	}
}

func TestInvalid(t *testing.T) {
	cases := map[string]map[string]string{
		"REEL_STORAGE_QUOTA":       {"REEL_STORAGE_QUOTA": "lots"},
		"REEL_LOG_RETENTION":       {"REEL_LOG_RETENTION": "forever"},
		"REEL_TLS_KEY":             {"REEL_TLS_CERT": "cert.pem"},
		"REEL_ADMIN_PASSWORD":      {"REEL_ADMIN_EMAIL": "a@b.c"},
		"REEL_TRUSTED_PROXIES":     {"REEL_TRUSTED_PROXIES": "not-an-ip"},
		"REEL_HASH_CONCURRENCY":    {"REEL_HASH_CONCURRENCY": "0"},
		"REEL_DB_MAX_CONNS":        {"REEL_DB_MAX_CONNS": "-1"},
		"REEL_DB_QUEUE_CONNS":      {"REEL_DB_QUEUE_CONNS": "-1"},
		"REEL_DEBUG_ADDR":          {"REEL_DEBUG_ADDR": "6060"},
		"REEL_LOG_FORMAT":          {"REEL_LOG_FORMAT": "xml"},
		"REEL_LOG_LEVEL":           {"REEL_LOG_LEVEL": "loud"},
		"REEL_SERVICE_KEY":         {"REEL_SERVICE_KEY": "short"},
		"REEL_JOB_HEARTBEAT":       {"REEL_JOB_HEARTBEAT": "1ms"},
		"REEL_GATEWAY_TRY_TIMEOUT": {"REEL_GATEWAY_TRY_TIMEOUT": "-1s"},
	}
	for name, env := range cases {
		_, _, err := load(t, env)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: want an error naming it, got %v", name, err)
		}
		if err != nil && strings.Count(err.Error(), "\n") > 0 {
			t.Errorf("%s: error should be one line: %q", name, err)
		}
	}
	if _, _, err := load(t, nil, "extra"); err == nil {
		t.Fatal("stray argument accepted")
	}
}

// REEL_LOG_FORMAT takes auto (the default), text or json in any case;
// REEL_LOG_LEVEL the four slog levels.
func TestLogSettings(t *testing.T) {
	for _, f := range []string{"auto", "text", "json", "JSON"} {
		for _, l := range []string{"debug", "info", "warn", "ERROR"} {
			c, _, err := load(t, map[string]string{"REEL_LOG_FORMAT": f, "REEL_LOG_LEVEL": l})
			if err != nil || c.Log.Format != f || c.Log.Level != l {
				t.Errorf("%s/%s: %v", f, l, err)
			}
		}
	}
	if _, _, err := load(t, nil, "-log-format", "pretty"); err == nil || !strings.Contains(err.Error(), "REEL_LOG_FORMAT") {
		t.Fatalf("-log-format pretty: %v", err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"50MiB": 50 << 20, "2GiB": 2 << 30, "1048576": 1 << 20, "-1": -1, "1.5KiB": 1536, "10MB": 10e6, "8M": 8 << 20, " 3 GiB ": 3 << 30} {
		got, err := config.ParseSize(in)
		if err != nil || got != want {
			t.Errorf("%q: %d %v, want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "abc", "-2", "5XB", "1e400"} {
		if _, err := config.ParseSize(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSeveralErrorsOneLine(t *testing.T) {
	_, _, err := load(t, map[string]string{"REEL_STORAGE_QUOTA": "x", "REEL_MEDIA_CHUNK": "y"})
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "REEL_MEDIA_CHUNK") || !strings.Contains(err.Error(), "REEL_STORAGE_QUOTA") {
		t.Fatalf("%q", err)
	}
}

// A service's URL may list its replicas: the gateway gets them all,
// service-to-service clients the first.
func TestReplicaURLs(t *testing.T) {
	c, _, err := load(t, map[string]string{"REEL_VIDEOS_URL": " http://a:8080/ , http://b:8080,", "REEL_DATA_DIR": "/d"})
	if err != nil {
		t.Fatal(err)
	}
	if c.URLs["videos"] != "http://a:8080" || strings.Join(c.Replicas["videos"], "|") != "http://a:8080|http://b:8080" {
		t.Fatalf("%v %v", c.URLs, c.Replicas)
	}
	if c.Videos.TusDir != "/d/uploads/tus" || c.Videos.JobHeartbeat != 10*time.Second || c.GatewayTryTimeout != 10*time.Second {
		t.Fatalf("defaults: %q %v %v", c.Videos.TusDir, c.Videos.JobHeartbeat, c.GatewayTryTimeout)
	}
}

package loadtest

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestParseWeights(t *testing.T) {
	w, err := ParseWeights(DefaultWeights)
	if err != nil {
		t.Fatal(err)
	}
	if w[ActFeed] != 10 || w[ActAdminLogs] != 1 || w[ActLogin] != 0 || w.String() != DefaultWeights {
		t.Fatalf("%v → %s", w, w)
	}
	w, err = ParseWeights(" login = 3 , feed=0 ")
	if err != nil || w[ActLogin] != 3 || w.String() != "login=3" {
		t.Fatalf("%v %v", w, err)
	}
	for _, bad := range []string{"", "feed=0", "nope=1", "feed", "feed=-1", "feed=x", "feed=99999999"} {
		if _, err := ParseWeights(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestValidateURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080":        "http://127.0.0.1:8080",
		"http://127.0.0.1:8080/":       "http://127.0.0.1:8080",
		"https://reel.example/prefix/": "https://reel.example/prefix",
	} {
		if got, err := ValidateURL(in); err != nil || got != want {
			t.Errorf("%s: %q %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "127.0.0.1:8080", "ftp://host/", "file:///etc/passwd", "http://", "http://u:p@host/", "http://host/?q=1", "http://host/#x", "mailto:a@b", "gopher://h"} {
		if _, err := ValidateURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestConfigBounds(t *testing.T) {
	ok := Config{BaseURL: "http://127.0.0.1:1", Users: 10, Duration: time.Minute}
	c, err := ok.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Timeout <= 0 || c.SetupTimeout <= 0 || c.Bucket != time.Second || c.Weights.String() != DefaultWeights {
		t.Fatalf("defaults: %+v", c)
	}
	long := ok
	long.Duration = MaxDuration
	if c, _ := long.withDefaults(); c.Bucket != 4*time.Second {
		t.Fatalf("an hour in %s buckets", c.Bucket)
	}
	onlyCount := ok
	onlyCount.Duration, onlyCount.Requests = 0, 100
	if c, err := onlyCount.withDefaults(); err != nil || c.Duration != MaxDuration {
		t.Fatalf("a count alone is still bounded in time: %s %v", c.Duration, err)
	}
	for name, mut := range map[string]func(*Config){
		"no users":         func(c *Config) { c.Users = 0 },
		"too many users":   func(c *Config) { c.Users = MaxUsers + 1 },
		"too long":         func(c *Config) { c.Duration = MaxDuration + time.Second },
		"unbounded":        func(c *Config) { c.Duration, c.Requests = 0, 0 },
		"too many":         func(c *Config) { c.Requests = MaxRequests + 1 },
		"bad url":          func(c *Config) { c.BaseURL = "ftp://x" },
		"half admin":       func(c *Config) { c.AdminEmail = "a@b.c" },
		"long timeout":     func(c *Config) { c.Timeout = time.Hour },
		"negative think":   func(c *Config) { c.Think = -time.Second },
		"all zero weights": func(c *Config) { c.Weights = Weights{ActFeed: 0} },
	} {
		c := ok
		mut(&c)
		if _, err := c.withDefaults(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Without a video or admin credentials, their actions drop out of the mix
// with a note instead of failing every time.
func TestRunDropsImpossibleActions(t *testing.T) {
	c, err := Config{BaseURL: "http://127.0.0.1:1", Users: 1, Duration: time.Second}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	r, err := newRun(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if w := Weights(r.weightMap()); w[ActUpload] != 0 || w[ActAdminLogs] != 0 || w[ActFeed] != 10 {
		t.Fatalf("weights %s", w)
	}
	if len(r.notes) != 2 || !strings.Contains(r.notes[0]+r.notes[1], "admin") {
		t.Fatalf("notes %q", r.notes)
	}
	c.Weights = Weights{ActUpload: 1}
	if _, err := newRun(t.Context(), c); err == nil {
		t.Fatal("a run with nothing to do started")
	}
}

func TestMultipartBody(t *testing.T) {
	video := []byte("\x00\x00\x00\x18ftypmp42 not really a video")
	p := multipartBody("my title", video)
	ctype := p.ctype
	if !strings.HasPrefix(ctype, "multipart/form-data; boundary=") {
		t.Fatal(ctype)
	}
	for range 2 { // the body can be opened again
		buf, err := io.ReadAll(iotest.HalfReader(p.open()))
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(buf)) != p.size {
			t.Fatalf("size %d, declared %d", len(buf), p.size)
		}
		s := string(buf)
		if strings.Index(s, `name="title"`) > strings.Index(s, `name="video"`) || !strings.Contains(s, "my title") || !strings.Contains(s, string(video)) || !strings.HasSuffix(s, "--\r\n") {
			t.Fatalf("body %q", s)
		}
	}
}

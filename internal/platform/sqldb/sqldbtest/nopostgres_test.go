package sqldbtest

import (
	"fmt"
	"strings"
	"testing"
)

// fakeTB records Skip and Fatal instead of stopping, so the behaviour
// without a server can be checked from inside a test.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper()                           {}
func (f *fakeTB) Skip(args ...any)                  { f.skipped = fmt.Sprint(args...) }
func (f *fakeTB) Fatal(args ...any)                 { f.failed = fmt.Sprint(args...) }
func (f *fakeTB) Fatalf(format string, args ...any) { f.failed = fmt.Sprintf(format, args...) }

func TestPostgresURLWithoutServer(t *testing.T) {
	t.Setenv(EnvPostgresURL, "")
	// Use up the once-per-process stderr notice, which would otherwise
	// announce a missing server on runs that have one.
	warnOnce.Do(func() {})

	t.Setenv("CI", "")
	f := &fakeTB{TB: t}
	if u := PostgresURL(f); u != "" || f.failed != "" || !strings.Contains(f.skipped, "POSTGRESQL NOT AVAILABLE") {
		t.Errorf("outside CI: url %q, skipped %q, failed %q; want a loud skip", u, f.skipped, f.failed)
	}

	t.Setenv("CI", "true")
	f = &fakeTB{TB: t}
	if u := PostgresURL(f); u != "" || f.skipped != "" || !strings.Contains(f.failed, EnvPostgresURL) {
		t.Errorf("in CI: url %q, skipped %q, failed %q; want a failure naming %s", u, f.skipped, f.failed, EnvPostgresURL)
	}

	t.Setenv(EnvPostgresURL, "mysql://root:s3cret@localhost/x")
	f = &fakeTB{TB: t}
	if u := PostgresURL(f); u != "" || f.failed == "" || strings.Contains(f.failed, "s3cret") {
		t.Errorf("bad URL: url %q, failed %q; want a failure without the password", u, f.failed)
	}
}

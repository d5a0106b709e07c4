package integration

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

// upgradeBase is the previous release: the commit whose binary must keep
// working on the schema this one migrates to (expand now, contract in a
// later release). Each release sets it to the commit of the release before
// (docs/operations.md, Upgrades); REEL_TEST_UPGRADE_BASE overrides it.
const upgradeBase = "9bac742e3086111b7938e011c2ac9e3eb093a0f8"

// oldBinary builds reel at commit from this repository's history, once per
// commit: the binary is kept in the user's cache directory.
func oldBinary(t *testing.T, commit string) string {
	t.Helper()
	fail := t.Skipf
	if os.Getenv("CI") == "true" {
		fail = t.Fatalf
	}
	root, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		fail("UPGRADE TEST NEEDS GIT: not a git checkout: %v", err)
	}
	full, err := exec.Command("git", "rev-parse", "--verify", "--quiet", commit+"^{commit}").Output()
	if err != nil {
		fail("UPGRADE TEST: commit %s is not in this clone (a shallow one? git fetch --unshallow): %v", commit, err)
	}
	commit = strings.TrimSpace(string(full))
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	bin := filepath.Join(cache, "reel-upgrade", commit, "reel")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	src := t.TempDir()
	archive := exec.Command("git", "-C", strings.TrimSpace(string(root)), "archive", "--format=tar", commit)
	untar := exec.Command("tar", "-x", "-C", src)
	var errb bytes.Buffer
	pipe, err := archive.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	untar.Stdin, archive.Stderr, untar.Stderr = pipe, &errb, &errb
	if err := untar.Start(); err != nil {
		t.Fatal(err)
	}
	if err := archive.Run(); err != nil {
		t.Fatalf("git archive %s: %v\n%s", commit, err, errb.String())
	}
	if err := untar.Wait(); err != nil {
		t.Fatalf("untar %s: %v\n%s", commit, err, errb.String())
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o750); err != nil {
		t.Fatal(err)
	}
	// Built beside its final name and renamed, so that runs in parallel
	// never see half a binary.
	tmp := bin + fmt.Sprintf(".%d", os.Getpid())
	build := exec.Command("go", "build", "-ldflags", "-X main.version=upgrade-base-"+commit[:12], "-o", tmp, "./cmd/reel")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build reel at %s: %v\n%s", commit, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// onto points an absolute URL of one process at another.
func onto(t *testing.T, raw, base string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := url.Parse(base)
	u.Scheme, u.Host = b.Scheme, b.Host
	return u.String()
}

// TestUpgradeSideBySide is a rolling upgrade on one PostgreSQL: the
// previous release serves, the new one starts beside it and migrates, and
// the whole flow runs through both in turn, each seeing the other's
// writes; then the old one restarts on the new schema, as a replica of the
// previous release does when it crashes mid-rollout.
func TestUpgradeSideBySide(t *testing.T) {
	base := os.Getenv("REEL_TEST_UPGRADE_BASE")
	if base == "" {
		base = upgradeBase
	}
	// What may be missing first, before the old binary's build.
	dbURL := sqldbtest.PostgresURL(t)
	file := makeVideo(t, 2)
	oldBin := oldBinary(t, base)
	content, _ := os.ReadFile(file)

	c := &cluster{t: t, procs: map[string]*proc{}}
	blobs := t.TempDir() // one disk store both processes share
	common := append([]string{"REEL_DATABASE_URL=" + dbURL, "REEL_BLOB_URL=" + blobs}, limits...)
	old := c.add("old", append([]string{"REEL_DATA_DIR=" + t.TempDir()}, common...)...)
	old.bin = oldBin
	old.start()
	newer := c.add("new", append([]string{"REEL_DATA_DIR=" + t.TempDir()}, common...)...)
	newer.start()

	at := func(p *proc) *client {
		return &client{t: t, base: p.base(), http: c.client().http}
	}
	// ann registers on the old one and logs in on the new one; bob the
	// other way round.
	annOld := at(old)
	annOld.jsonDo("POST", "/api/v1/auth/register", map[string]string{"email": "ann@example.com", "password": "correct horse", "username": "ann"}, 201)
	annNew := at(newer)
	annID := annNew.login("ann@example.com", "correct horse", false)
	annOld.login("ann@example.com", "correct horse", false)
	bobNew := at(newer)
	bobNew.jsonDo("POST", "/api/v1/auth/register", map[string]string{"email": "bob@example.com", "password": "correct horse", "username": "bob"}, 201)
	bobOld := at(old)
	bobID := bobOld.login("bob@example.com", "correct horse", false)
	// A token from one is good on the other.
	bobNew.token = bobOld.token
	bobNew.jsonDo("GET", "/api/v1/users/me", nil, 200)

	// Uploads on each, watched through the other.
	ids := map[*proc]string{}
	for _, up := range []struct {
		cl    *client
		on    *proc
		other *proc
	}{{annOld, old, newer}, {annNew, newer, old}} {
		a := up.cl.upload(file, "clip on "+up.on.name)
		if a.status != 201 {
			t.Fatalf("upload on %s: %d %s", up.on.name, a.status, a.raw)
		}
		id := a.json(t)["video"].(map[string]any)["id"].(string)
		ids[up.on] = id
		viewer := at(up.other)
		viewer.token = bobOld.token
		if v := viewer.jsonDo("GET", "/api/v1/videos/"+id, nil, 200); v["video"].(map[string]any)["status"] != "ready" {
			t.Fatalf("video uploaded on %s, read on %s: %v", up.on.name, up.other.name, v)
		}
		pb := viewer.jsonDo("POST", "/api/v1/videos/"+id+"/playback", nil, 200)
		for _, p := range []*proc{old, newer} {
			if got := viewer.do("GET", onto(t, pb["url"].(string), p.base()), nil); got.status != 200 || !bytes.Equal(got.raw, content) {
				t.Fatalf("video uploaded on %s, played from %s: %d, %d bytes", up.on.name, p.name, got.status, len(got.raw))
			}
		}
	}
	for _, cl := range []*client{annOld, annNew} {
		feed := cl.jsonDo("GET", "/api/v1/videos/mine", nil, 200)
		if n := len(feed["items"].([]any)); n != 2 {
			t.Fatalf("ann's videos on %s: %d, want both", cl.base, n)
		}
	}

	// Delete on one, see the trash and restore on the other.
	for _, step := range []struct{ del, res *client }{{annOld, annNew}, {annNew, annOld}} {
		id := ids[newer]
		if step.del == annNew {
			id = ids[old]
		}
		if a := step.del.do("DELETE", "/api/v1/videos/"+id, nil); a.status != 204 {
			t.Fatalf("delete on %s: %d %s", step.del.base, a.status, a.raw)
		}
		trash := step.res.jsonDo("GET", "/api/v1/trash", nil, 200)
		if items := trash["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != id {
			t.Fatalf("trash on %s: %v", step.res.base, trash)
		}
		step.res.jsonDo("POST", "/api/v1/videos/"+id+"/restore", nil, 200)
	}
	stOld := annOld.jsonDo("GET", "/api/v1/storage/me", nil, 200)
	stNew := annNew.jsonDo("GET", "/api/v1/storage/me", nil, 200)
	if fmt.Sprint(stOld) != fmt.Sprint(stNew) || stOld["used_bytes"].(float64) < 2*float64(len(content)) {
		t.Fatalf("ann's storage: old %v, new %v", stOld, stNew)
	}

	// The activity log, read on each, holds what both recorded: ann's
	// account and videos, bob's viewing.
	want := map[string][]string{
		annID: {"REGISTER", "LOGIN", "UPLOAD_VIDEO", "DELETE_VIDEO", "RESTORE_VIDEO"},
		bobID: {"REGISTER", "LOGIN", "STREAM_VIDEO"},
	}
	for _, p := range []*proc{old, newer} {
		admin := at(p)
		admin.login(adminEmail, adminPassword, false)
		for user, actions := range want {
			eventually(t, 15*time.Second, func() string {
				seen := map[string]int{}
				for _, action := range admin.eventIDs(user) {
					seen[action]++
				}
				for _, a := range actions {
					if seen[a] == 0 || a == "UPLOAD_VIDEO" && seen[a] != 2 || a == "STREAM_VIDEO" && seen[a] < 2 {
						return fmt.Sprintf("events of %s read on %s: %v", user, p.name, seen)
					}
				}
				return ""
			})
		}
	}

	// Each video's poster job, inserted by one, worked by either.
	for _, id := range ids {
		posterCutWithin(t, annNew, id, 5*time.Minute)
	}

	// An old replica restarting on the new schema starts and serves.
	old.restart(syscall.SIGTERM)
	annOld.login("ann@example.com", "correct horse", false)
	if feed := annOld.jsonDo("GET", "/api/v1/videos/mine", nil, 200); len(feed["items"].([]any)) != 2 {
		t.Fatalf("ann's videos on the restarted old one: %v", feed)
	}
}

package videos_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
	"github.com/reel-video/reel/internal/videos"
)

// A multipart upload's reservations are leased: renewed while the upload
// runs (so that a live upload outlasting many leases keeps them), no more
// once it ends. A resumable upload's belong to the upload and are not.
func TestUploadRenewsItsLease(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		clip := testVideo(t, 1, 64, 48)
		ann := e.user("user")
		body, ct := multipartBody(t, map[string]string{"title": "slow"}, clip, "a.mp4")
		conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /api/v1/videos HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
			ann.token, ct, len(body))
		_, _ = conn.Write(body[:len(body)/2])
		eventually(t, 30*time.Second, func() string {
			if held, renewed := e.quota.renewals(); held != 1 || renewed < 3 {
				return fmt.Sprintf("%d held, renewed %d times", held, renewed)
			}
			return ""
		})
		if _, err := conn.Write(body[len(body)/2:]); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 12)
		if _, err := conn.Read(buf); err != nil || !strings.HasPrefix(string(buf), "HTTP/1.1 201") {
			t.Fatalf("upload: %q %v", buf, err)
		}
		_, renewed := e.quota.renewals()
		if held, _ := e.quota.renewals(); held != 0 {
			t.Fatalf("%d reservations held after the upload", held)
		}

		// A resumable upload's reservations live with the upload.
		c := e.tusCreate(ann, len(clip), tusMeta("title", "paused"))
		if c.status != 201 {
			t.Fatalf("create: %d %s", c.status, c.raw)
		}
		time.Sleep(200 * time.Millisecond) // many leases
		if held, again := e.quota.renewals(); held != 1 || again != renewed {
			t.Fatalf("a resumable upload's reservation: %d held, renewed %d times (was %d)", held, again, renewed)
		}
	}, func(c *envConfig) { c.lease = 40 * time.Millisecond })
}

// At start, a process that is the spool's only live user removes the work
// files a dead process left there (uploads arriving, renditions, posters
// being cut), and keeps poster sources, which queued jobs read. While
// another live process uses the spool, it removes nothing.
func TestStartRemovesOrphanedSpoolFiles(t *testing.T) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		spool := t.TempDir()
		id := uuid.NewString()
		orphans := []string{"upload-123456", "upload-" + id + "-0a1b2c3d-720.mp4", "upload-" + id + "-0a1b2c3d.source", "reel-poster-99.jpg"}
		kept := []string{"upload-" + id + ".poster-source", "notes.txt"}
		for _, f := range append(slices.Clone(orphans), kept...) {
			if err := os.WriteFile(filepath.Join(spool, f), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		withSpool := func(c *envConfig) { c.spool, c.noServer = spool, true }
		first := newEnv(t, db, withSpool)
		want := append(slices.Clone(kept), orphans...)
		slices.Sort(want)
		if got := files(t, spool); !slices.Equal(got, []string{"notes.txt", "upload-" + id + ".poster-source"}) {
			// The first process to start was alone: it removed them.
			t.Fatalf("after the first start: %v", got)
		}
		// Files of the live first process, then a second process starting
		// beside it: they stay.
		for _, f := range orphans {
			if err := os.WriteFile(filepath.Join(spool, f), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		newEnv(t, db, withSpool)
		if got := files(t, spool); !slices.Equal(got, want) {
			t.Fatalf("a live process's files were touched: %v, want %v", got, want)
		}
		// The first process dies; a third starts... but the second still
		// lives: nothing is removed until the spool has no live user.
		if err := first.svc.Close(); err != nil {
			t.Fatal(err)
		}
		newEnv(t, db, withSpool)
		if got := files(t, spool); !slices.Equal(got, want) {
			t.Fatalf("removed with a live user left: %v, want %v", got, want)
		}
	}, videos.Migrations(), videos.MigrationTable)
}

// A restarted process's first expiry run removes the tus files of uploads
// that are closed or unknown (left by a crash), at once; an open upload's
// files stay, since its client may resume it.
func TestTusStartRemovesOrphanedFiles(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		clip := testVideo(t, 1, 64, 48)
		ann := e.user("user")
		c := e.tusCreate(ann, len(clip), tusMeta("title", "resumable"))
		loc := c.header.Get("Location")
		if r := e.tusPatch(ann, loc, 0, clip[:100]); r.status != 204 {
			t.Fatalf("patch: %d", r.status)
		}
		open := loc[strings.LastIndex(loc, "/")+1:]
		stray, half := uuid.NewString(), uuid.NewString()
		for _, f := range []string{stray, stray + ".info", half} {
			if err := os.WriteFile(filepath.Join(e.dirs.tus, f), []byte("{}"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		// The live process leaves fresh files alone.
		if err := e.tus.Expire(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := files(t, e.dirs.tus); len(got) != 5 {
			t.Fatalf("files after a run of the live process: %v", got)
		}
		// The restarted one: built after the files were written.
		time.Sleep(10 * time.Millisecond)
		restarted, err := videos.NewTUS(e.svc, e.iss.Verifier(), e.dirs.tus, []netip.Prefix{}, obs.Discard())
		if err != nil {
			t.Fatal(err)
		}
		if err := restarted.Expire(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := files(t, e.dirs.tus)
		if !slices.Equal(got, []string{open, open + ".info"}) {
			t.Fatalf("files after the restart: %v, want the open upload's only", got)
		}
		if off, r := e.tusOffset(ann, loc); r.status != 200 || off != 100 {
			t.Fatalf("the open upload after the restart: %d %d", r.status, off)
		}
	})
}

// downLimit is the usage service as a process killed right after an
// upload's ready transaction saw it: the volume commit never arrives.
type downLimit struct{ videos.UploadLimit }

func (downLimit) CommitUpload(context.Context, string, int64) error { return errKilled }

var errKilled = errors.New("the process was killed")

// A process killed between the transaction that makes a video ready and
// the commit of the day's upload volume does not lose that volume: the
// transaction recorded it as owed, and the next process's maintenance
// commits it, once.
func TestUploadVolumeOwedSurvivesAKill(t *testing.T) {
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		quota, limit, egress := newFakeQuota(-1), newFakeLimit(-1), newFakeEgress()
		dead := newEnv(t, db, func(c *envConfig) {
			c.deps = func(*sqldb.DB) (videos.Quota, videos.UploadLimit, videos.Egress) {
				return quota, downLimit{limit}, egress
			}
		})
		ann := dead.user("user")
		r := dead.upload(ann, "counted after the kill", testVideo(t, 1, 64, 48))
		if r.status != 201 {
			t.Fatalf("upload: %d %s", r.status, r.raw)
		}
		size := int64(r.video(t)["size_bytes"].(float64))
		if used, held := limit.state(ann.id); used != 0 || held != 1 {
			t.Fatalf("before the restart: volume used %d with %d held, want 0 and the reservation", used, held)
		}
		next := newEnv(t, db, func(c *envConfig) {
			c.noServer = true
			c.deps = func(*sqldb.DB) (videos.Quota, videos.UploadLimit, videos.Egress) { return quota, limit, egress }
		})
		for range 2 {
			if err := next.svc.Maintain(context.Background()); err != nil {
				t.Fatal(err)
			}
			if used, held := limit.state(ann.id); used != size || held != 0 {
				t.Fatalf("after the restart: volume used %d with %d held, want %d committed", used, held, size)
			}
		}
	}, videos.Migrations(), videos.MigrationTable)
}

// A restore killed between its claim and its end holds the video for a
// lease, not for restoreStale: the next maintenance after the lease
// lapsed gives it back to the trash, and it can be restored again.
func TestRestoreKilledAfterItsClaimLapses(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		ann := e.user("user")
		id := e.mustUpload(ann, "claimed", testVideo(t, 1, 64, 48))
		if r := e.do("DELETE", "/api/v1/videos/"+id, ann.token, nil); r.status != 204 {
			t.Fatalf("trash: %d %s", r.status, r.raw)
		}
		// What the kill left: the claim, its lease already past.
		now := e.clock()
		if _, err := e.db.W.Exec(`UPDATE videos SET quota_state = 'charging', quota_at = $1, lease_until = $2 WHERE id = $3`,
			now.UnixMicro(), now.Add(-time.Second).UnixMicro(), id); err != nil {
			t.Fatal(err)
		}
		if r := e.do("POST", "/api/v1/videos/"+id+"/restore", ann.token, nil); r.status != 409 {
			t.Fatalf("restore while claimed: %d %s", r.status, r.raw)
		}
		if err := e.svc.Maintain(context.Background()); err != nil {
			t.Fatal(err)
		}
		if r := e.do("POST", "/api/v1/videos/"+id+"/restore", ann.token, nil); r.status != 200 {
			t.Fatalf("restore after the maintenance: %d %s", r.status, r.raw)
		}
		if used, held, _ := e.quota.state(ann.id); held != 0 || used == 0 {
			t.Fatalf("quota used %d with %d held after the restore", used, held)
		}
	})
}

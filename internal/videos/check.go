package videos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/reel-video/reel/internal/platform/blob"
	"github.com/reel-video/reel/internal/platform/reserve"
)

// The consistency check (reel check, and the periodic check job): every
// video's blobs are there with their recorded sizes, each user's storage
// ledger counts what their videos store, no blob or spool file is left
// without an owner, no reservation outlives its time. It reports each
// difference; with Fix it repairs what can be repaired without losing
// anyone's data (check_fix.go).
//
// The check runs beside live traffic, so it leaves alone whatever changed
// within its grace period: an upload, a trash or a transcode in flight
// looks like a difference for a moment. A ledger difference is confirmed by
// reading both sides again before it is reported.

// Kinds of finding.
const (
	// FindMissingBlob: a blob a video records is not in the store.
	FindMissingBlob = "missing_blob"
	// FindBlobSize: a blob is stored with another size than recorded.
	FindBlobSize = "blob_size"
	// FindOrphanBlob: a stored blob belongs to no video.
	FindOrphanBlob = "orphan_blob"
	// FindLedger: a user's storage ledger does not count the bytes their
	// videos store.
	FindLedger = "ledger"
	// FindSpoolFile: a spool file older than a day (the spool sweep
	// removes such files hourly; one left says it does not run).
	FindSpoolFile = "spool_file"
	// FindLapsedStorage and FindLapsedUpload: reservations of the storage
	// quota or of the daily upload volume held past their expiry.
	FindLapsedStorage = "lapsed_storage_reservations"
	FindLapsedUpload  = "lapsed_upload_reservations"
)

// FindingKinds lists every kind of finding, for metrics.
var FindingKinds = []string{FindMissingBlob, FindBlobSize, FindOrphanBlob, FindLedger, FindSpoolFile, FindLapsedStorage, FindLapsedUpload}

// DefaultCheckGrace is how recent a change the check leaves alone: as long
// as the maintenance job lets an upload's finalisation run (staleAfter).
const DefaultCheckGrace = staleAfter

// spoolAge is the age from which a spool file is reported: the spool
// sweep's (removeStaleSpool).
const spoolAge = 24 * time.Hour

// checkBatch is how many videos, or storage accounts, one read takes.
const checkBatch = 200

// Ledger is the storage service as the check uses it (storage.Quota has
// it, in process and over HTTP).
type Ledger interface {
	Accounts(ctx context.Context, after string, limit int) ([]reserve.Account, error)
	Objects(ctx context.Context, userID, after string, limit int) ([]reserve.Object, error)
	Correct(ctx context.Context, userID string, fixes []reserve.Correction) (int, error)
	Holds
}

// Holds is a service's reservations as the check uses them (the storage
// service's, and the usage service's upload reservations).
type Holds interface {
	Lapsed(ctx context.Context, grace time.Duration) (reserve.Lapsed, error)
	Sweep(ctx context.Context) error
}

// CheckOptions tune a check.
type CheckOptions struct {
	// Fix repairs what can be repaired safely (check_fix.go).
	Fix bool
	// Grace: changes more recent than this are left alone; 0 is
	// DefaultCheckGrace, negative none at all (tests on a quiet system).
	Grace time.Duration
}

// Finding is one difference the check found.
type Finding struct {
	Kind    string `json:"kind"`
	VideoID string `json:"video_id,omitempty"`
	UserID  string `json:"user_id,omitempty"`
	// Key is the blob key, or the spool file's path.
	Key string `json:"key,omitempty"`
	// Want and Got are the recorded and the found bytes (blob sizes, a
	// ledger), or for lapsed reservations Got is their count.
	Want   int64  `json:"want"`
	Got    int64  `json:"got"`
	Detail string `json:"detail"`
	// Fixed says that Fix repaired it.
	Fixed bool `json:"fixed"`
}

func (f Finding) String() string {
	s := f.Kind + ": " + f.Detail
	if f.Fixed {
		s += " (fixed)"
	}
	return s
}

// CheckReport is what a check found and looked at.
type CheckReport struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Fix      bool      `json:"fix"`
	Videos   int       `json:"videos"`
	Blobs    int       `json:"blobs"`
	Accounts int       `json:"accounts"`
	// InFlight counts users whose ledger was left alone because
	// something of theirs changed within the grace period.
	InFlight int       `json:"in_flight"`
	Findings []Finding `json:"findings"`
	// Unchecked names the parts this process could not check (no storage
	// or usage service to ask).
	Unchecked []string `json:"unchecked,omitempty"`
}

// Count returns how many findings of kind the report has.
func (r *CheckReport) Count(kind string) int {
	n := 0
	for _, f := range r.Findings {
		if f.Kind == kind {
			n++
		}
	}
	return n
}

// Unfixed counts the findings that Fix did not repair.
func (r *CheckReport) Unfixed() int {
	n := 0
	for _, f := range r.Findings {
		if !f.Fixed {
			n++
		}
	}
	return n
}

// checker is one run of the check.
type checker struct {
	s      *Service
	opt    CheckOptions
	now    time.Time
	cutoff int64 // micros: changes after it are in flight
	rep    *CheckReport
	// ids are the videos that exist: every blob under videos/<id>/ is
	// theirs (their jobs store files before recording them).
	ids map[string]bool
	// owed is what each owner's videos count toward their quota, by
	// object; busy marks owners with a change in flight.
	owed map[string]map[string]int64
	busy map[string]bool
	// repairs are the damaged derived file sets Fix remakes, by video
	// and set, in the order found (check_derived.go).
	repairs     map[string]*derivedSet
	repairOrder []string
}

// Check runs the consistency check; see CheckOptions. An error means a part
// could not be checked (a database or a service unreachable); the report
// holds what was found until then.
func (s *Service) Check(ctx context.Context, opt CheckOptions) (*CheckReport, error) {
	switch {
	case opt.Grace == 0:
		opt.Grace = DefaultCheckGrace
	case opt.Grace < 0:
		opt.Grace = 0
	}
	now := s.now()
	c := &checker{
		s: s, opt: opt, now: now, cutoff: micros(now.Add(-opt.Grace)),
		rep: &CheckReport{Started: now, Fix: opt.Fix, Findings: []Finding{}},
		ids: map[string]bool{}, owed: map[string]map[string]int64{}, busy: map[string]bool{},
		repairs: map[string]*derivedSet{},
	}
	err := c.videos(ctx)
	if err == nil {
		err = c.orphans(ctx)
	}
	if err == nil {
		err = c.ledger(ctx)
	}
	if err == nil {
		err = c.repair(ctx)
	}
	if err == nil {
		c.spool()
		err = c.holds(ctx)
	}
	c.rep.Finished = s.now()
	if err != nil {
		return c.rep, fmt.Errorf("check: %w", err)
	}
	return c.rep, nil
}

func (c *checker) add(f Finding) *Finding {
	c.rep.Findings = append(c.rep.Findings, f)
	return &c.rep.Findings[len(c.rep.Findings)-1]
}

// videos reads every video: what it owes its owner's quota, and whether
// its blobs are there.
func (c *checker) videos(ctx context.Context) error {
	after := ""
	for {
		rs, err := c.s.store.videosAfter(ctx, after, checkBatch)
		if err != nil {
			return err
		}
		if err := c.s.store.withFiles(ctx, c.s.db.R, rs); err != nil {
			return err
		}
		for _, r := range rs {
			c.rep.Videos++
			c.ids[r.ID] = true
			c.owe(r)
			if err := c.blobsOf(ctx, r); err != nil {
				return err
			}
		}
		if len(rs) < checkBatch {
			return nil
		}
		after = rs[len(rs)-1].ID
	}
}

// owe records what r counts toward its owner's quota: its charges when it
// is charged, nothing when its bytes are free; a video between the two,
// or changed within the grace period, makes its owner busy.
func (c *checker) owe(r record) {
	if c.owed[r.OwnerID] == nil {
		c.owed[r.OwnerID] = map[string]int64{}
	}
	if !c.settled(r) {
		c.busy[r.OwnerID] = true
		return
	}
	if r.QuotaState == quotaCharged {
		for _, ch := range r.charges() {
			c.owed[r.OwnerID][ch.key] += ch.bytes
		}
	}
}

func (c *checker) settled(r record) bool {
	if r.Status == StatusProcessing || max(r.UpdatedAt, r.QuotaAt) > c.cutoff {
		return false
	}
	return r.QuotaState == quotaFree || (r.QuotaState == quotaCharged && r.Status == StatusReady)
}

// blobsOf checks that the blobs of a ready video (in the trash too, until
// its purge) are stored with their recorded sizes. A missing blob is
// reported once a second read of the video shows it still there and not
// being purged. With Fix, a damaged derived file of a video whose own
// bytes are sound is planned for repair (check_derived.go).
func (c *checker) blobsOf(ctx context.Context, r record) error {
	if r.Status != StatusReady || r.PurgingAt.Valid {
		return nil
	}
	sourceOK := false // the video's own bytes come first in charges
	for _, ch := range r.charges() {
		damaged := len(c.rep.Findings)
		info, err := c.s.blobs.Stat(ctx, ch.key)
		switch {
		case errors.Is(err, blob.ErrNotFound):
			now, err := c.s.store.video(ctx, c.s.db.W, r.ID)
			if errors.Is(err, ErrVideoNotFound) || (err == nil && now.PurgingAt.Valid) {
				return nil // purged meanwhile
			}
			if err != nil {
				return err
			}
			what := "a file"
			if ch.key == r.VideoKey {
				what = "the video's own bytes"
			}
			c.add(Finding{Kind: FindMissingBlob, VideoID: r.ID, UserID: r.OwnerID, Key: ch.key, Want: ch.bytes,
				Detail: fmt.Sprintf("video %s: %s (%s, %d bytes) is not in the blob store", r.ID, what, ch.key, ch.bytes)})
		case err != nil:
			return err
		case info.Size != ch.bytes:
			c.add(Finding{Kind: FindBlobSize, VideoID: r.ID, UserID: r.OwnerID, Key: ch.key, Want: ch.bytes, Got: info.Size,
				Detail: fmt.Sprintf("video %s: %s is stored with %d bytes, recorded with %d", r.ID, ch.key, info.Size, ch.bytes)})
		default:
			sourceOK = sourceOK || ch.key == r.VideoKey
		}
		if c.opt.Fix && sourceOK && len(c.rep.Findings) > damaged {
			c.planRepair(r, ch.key, damaged)
		}
	}
	return nil
}

// orphans lists the blob store for blobs that belong to no video: under
// videos/<id>/ of a video that does not exist, or elsewhere. Blobs stored
// within the grace period are left alone (an upload storing its bytes
// before its video's row is read). With Fix they are deleted, each after
// a fresh read shows its video still absent.
func (c *checker) orphans(ctx context.Context) error {
	var found []blob.Info
	cutoff := fromMicros(c.cutoff)
	err := c.s.blobs.List(ctx, "", func(i blob.Info) error {
		c.rep.Blobs++
		if id := keyVideo(i.Key); id != "" && c.ids[id] {
			return nil
		}
		if i.ModTime.After(cutoff) {
			return nil
		}
		found = append(found, i)
		return nil
	})
	if err != nil {
		return err
	}
	for _, i := range found {
		f := c.add(Finding{Kind: FindOrphanBlob, VideoID: keyVideo(i.Key), Key: i.Key, Got: i.Size,
			Detail: fmt.Sprintf("%s (%d bytes, stored %s) belongs to no video", i.Key, i.Size, i.ModTime.UTC().Format(time.RFC3339))})
		if c.opt.Fix {
			if err := c.deleteOrphan(ctx, f); err != nil {
				return err
			}
		}
	}
	return nil
}

// keyVideo is the video id of a key videos/<id>/..., or "".
func keyVideo(key string) string {
	rest, ok := strings.CutPrefix(key, "videos/")
	if !ok {
		return ""
	}
	id, _, ok := strings.Cut(rest, "/")
	if !ok {
		return ""
	}
	return id
}

// spool reports spool files older than spoolAge. Nothing is removed here:
// the spool sweep does that, in the process whose spool it is.
func (c *checker) spool() {
	entries, err := os.ReadDir(c.s.cfg.SpoolDir)
	if err != nil {
		return
	}
	before := c.now.Add(-spoolAge)
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() || !fi.ModTime().Before(before) {
			continue
		}
		path := filepath.Join(c.s.cfg.SpoolDir, e.Name())
		c.add(Finding{Kind: FindSpoolFile, Key: path, Got: fi.Size(),
			Detail: fmt.Sprintf("spool file %s (%d bytes) is older than %s; the spool sweep should have removed it", path, fi.Size(), spoolAge)})
	}
}

// holds reports reservations held past their expiry by more than the
// grace period; Fix runs the sweep that releases them.
func (c *checker) holds(ctx context.Context) error {
	parts := []struct {
		kind, what string
		h          Holds
	}{{FindLapsedStorage, "storage reservations", c.s.ledger}, {FindLapsedUpload, "upload reservations", c.s.uploadHolds}}
	for _, p := range parts {
		if p.h == nil {
			c.rep.Unchecked = append(c.rep.Unchecked, p.what+": no service to ask in this process")
			continue
		}
		l, err := p.h.Lapsed(ctx, c.opt.Grace)
		if err != nil {
			return err
		}
		if l.Count == 0 {
			continue
		}
		f := c.add(Finding{Kind: p.kind, Got: int64(l.Count), Want: 0,
			Detail: fmt.Sprintf("%d %s (%d bytes) are held past their expiry; their sweep does not keep up or does not run", l.Count, p.what, l.Bytes)})
		if c.opt.Fix {
			if err := p.h.Sweep(ctx); err != nil {
				return err
			}
			if l, err = p.h.Lapsed(ctx, c.opt.Grace); err != nil {
				return err
			}
			f.Fixed = l.Count == 0
		}
	}
	return nil
}

// CheckStats keep the last periodic check's figures for metrics.
type CheckStats struct {
	last atomic.Pointer[CheckReport]
}

// Last returns the last report, nil before the first check ended.
func (s *CheckStats) Last() *CheckReport { return s.last.Load() }

// CheckStats returns the figures of the periodic check in this process.
func (s *Service) CheckStats() *CheckStats { return &s.checkStats }

package videos

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/reel-video/reel/internal/media"
)

// Adaptive streaming: each ready video gets a ladder of renditions (one
// fragmented MP4 per rung, named by its pixel height, with its HLS media
// playlist) and a storyboard, made by background jobs (jobs_streaming.go)
// with package media. The first rung is made on its own, as soon as
// possible (a remux of the source when it is fit for it, else the lowest
// rung); the rest follow in one ffmpeg run. Every file is stored and
// charged to the owner like any stored byte (storeCharged); a rung the
// quota has no room for is skipped, and the original stays playable
// whatever happens. The master playlist is not stored: /media renders it
// from the done renditions (media_files.go), so each rung appears as soon
// as it is complete.

// Stage is which part of a video's ladder a transcode makes.
type Stage string

// Stages of a video's ladder.
const (
	// StageFirst makes the first rung: a remux of the source when it is
	// fit for it, else the lowest rung.
	StageFirst Stage = "first"
	// StageRest makes every other rung, in one ffmpeg run.
	StageRest Stage = "rest"
)

// Names of the files of a video's streaming, as /media serves them.
const (
	MasterFile        = "master.m3u8"
	StoryboardFile    = "storyboard.vtt"
	StoryboardSprite  = "storyboard.jpg"
	hlsContentType    = "application/vnd.apple.mpegurl"
	vttContentType    = "text/vtt; charset=utf-8"
	mp4ContentType    = "video/mp4"
	spriteContentType = "image/jpeg"
)

// renditionFile names a rendition's file by its pixel height: "360.mp4",
// "360.m3u8".
func renditionFile(height int, ext string) string { return strconv.Itoa(height) + ext }

var (
	// ErrNoTranscoder is returned by Transcode and Storyboard in a process
	// built without the media tools (no ffmpeg).
	ErrNoTranscoder = errors.New("videos: this process has no ffmpeg to transcode with")
	// errUnstreamable is a source ffmpeg cannot stream: trying again
	// will not help.
	errUnstreamable = errors.New("the video cannot be streamed")
)

const (
	// progressEvery bounds how often a job writes the ladder's percent.
	progressEvery = time.Second
	// copyWeight is what a remux costs, for the percent, against an encode
	// of the same size: it reads and writes, but decodes nothing.
	copyWeight = 0.1
)

// planned is a rung of a video's ladder, named by its pixel height.
type planned struct {
	media.Rung
	stage  Stage
	weight float64
}

// ladderOf plans the ladder of src: its first rung, then the others,
// without a second rung of a height already planned. The remux of a
// 640×360 source is its 360 rendition: the ladder's 360 rung would be a
// worse copy of it, and storing that under the same name would change
// 360.mp4 under the feet of a viewer already playing the remux. The cost
// is a top variant whose segments start at the source's keyframes rather
// than the ladder's; players switch to and from it by timestamps.
func ladderOf(src media.Source) []planned {
	plan := media.PlanLadder(src)
	weight := func(r media.Rung) float64 {
		w := float64(r.Width) * float64(r.Height)
		if r.Copy {
			w *= copyWeight
		}
		return w
	}
	out := []planned{{Rung: plan.First, stage: StageFirst, weight: weight(plan.First)}}
	seen := map[int]bool{plan.First.Height: true}
	for _, r := range plan.Rest {
		if !seen[r.Height] {
			seen[r.Height] = true
			out = append(out, planned{Rung: r, stage: StageRest, weight: weight(r)})
		}
	}
	return out
}

// Transcode makes one stage of a video's ladder. It is idempotent: rungs
// already done are not made again, and a rung that an earlier attempt
// stored or charged without recording it is freed and stored afresh.
//
// The video's bytes come from its upload's spooled copy when this process
// still has it, else from the blob store (posterInput). Each rung is
// stored and charged (its .mp4 and its .m3u8), then recorded with its
// figures for the master playlist; a rung the owner's quota has no room
// for is recorded skipped (quota_exceeded) and the others go on. The
// video's streaming state and percent follow.
//
// A video that goes to the trash meanwhile stops the work (its ffmpeg is
// killed within watchInterval) and whatever was stored for it but not
// recorded is given back; what was recorded the trash frees with the
// video. Errors: ErrVideoNotFound (no such video), errVideoGone (trashed, not
// ready), errUnstreamable (the source cannot be streamed; the state is
// then failed), ErrNoTranscoder, or a failure worth another attempt.
func (s *Service) Transcode(ctx context.Context, id string, stage Stage) error {
	if s.tools == nil {
		return ErrNoTranscoder
	}
	if stage != StageFirst && stage != StageRest {
		return fmt.Errorf("videos: unknown transcode stage %q", stage)
	}
	r, err := s.workable(ctx, id)
	if err != nil {
		return err
	}
	ctx, stop := s.watch(ctx, id)
	defer stop()
	return s.cause(ctx, s.transcode(ctx, r, stage))
}

func (s *Service) transcode(ctx context.Context, r record, stage Stage) error {
	rows, err := s.store.renditionsOf(ctx, s.db.W, []string{r.ID})
	if err != nil {
		return err
	}
	have := map[int]string{}
	complete := r.StreamingState == streamingDone
	for _, row := range rows[r.ID] {
		have[row.Height] = row.State
		complete = complete && row.State == renditionDone
	}
	if complete {
		return nil // a restore's jobs, or a retry: nothing to make, not even the source to read
	}
	in, done, err := s.jobInput(ctx, r)
	if err != nil {
		return err
	}
	defer done()
	src, err := s.tools.Analyze(ctx, in)
	if errors.Is(err, media.ErrUnsupported) {
		s.streamingFailed(ctx, r.ID, err)
		return fmt.Errorf("%w: %w", errUnstreamable, err)
	}
	if err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	ladder := ladderOf(src)
	prog := &ladderProgress{s: s, ctx: ctx, id: r.ID}
	var todo []planned
	for _, p := range ladder {
		prog.total += p.weight
		switch {
		case have[p.Height] != "":
			prog.done += p.weight
			// A rung skipped for the quota is tried again (a restore, a
			// retry): the quota may have room now.
			if p.stage == stage && have[p.Height] == renditionSkipped {
				prog.done -= p.weight
				todo = append(todo, p)
			}
		case p.stage == stage:
			todo = append(todo, p)
		}
	}
	if len(todo) > 0 {
		if err := s.setStreaming(ctx, r.ID, streamingRunning, prog.percent(0)); err != nil {
			return err
		}
		if err := s.makeRungs(ctx, r, src, todo, prog, have); err != nil {
			return err
		}
	}
	finished := stage == StageRest
	if !finished {
		finished = true
		for _, p := range ladder {
			finished = finished && have[p.Height] != ""
		}
	}
	state, pct := streamingRunning, prog.percent(0)
	if finished {
		state, pct = streamingDone, 100
	}
	return s.setStreaming(ctx, r.ID, state, pct)
}

// setStreaming records where a video's ladder stands: a change its
// clients see (its progress alone is not: ladderProgress).
func (s *Service) setStreaming(ctx context.Context, id, state string, percent int) error {
	err := s.store.setStreaming(ctx, s.db.W, id, state, percent)
	s.changed(id)
	return err
}

// makeRungs encodes rungs in one ffmpeg run into the spool directory and
// stores and records each, updating have.
func (s *Service) makeRungs(ctx context.Context, r record, src media.Source, rungs []planned, prog *ladderProgress, have map[int]string) error {
	// The files are named upload-<id>-<random>-<height>.mp4: the random
	// part keeps two attempts that overlap (a job rescued while still
	// running) from writing one file, and the prefix puts files a crash
	// left under removeStaleSpool.
	var salt [4]byte
	_, _ = rand.Read(salt[:])
	prefix := "upload-" + r.ID + "-" + hex.EncodeToString(salt[:]) + "-"
	enc := make([]media.Rung, len(rungs))
	for i, p := range rungs {
		enc[i] = p.Rung
		enc[i].Name = prefix + strconv.Itoa(p.Height)
		prog.stage += p.weight
	}
	defer func() {
		for _, e := range enc {
			_ = os.Remove(filepath.Join(s.cfg.SpoolDir, e.File()))
		}
	}()
	if err := s.tools.Encode(ctx, src, enc, s.cfg.SpoolDir, prog.report); err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	for i, p := range rungs {
		state, err := s.storeRung(ctx, r, p, filepath.Join(s.cfg.SpoolDir, enc[i].File()))
		if err != nil {
			return err
		}
		have[p.Height] = state
		prog.stage -= p.weight
		prog.done += p.weight
		prog.force()
	}
	return nil
}

// storeRung stores and charges a rung's file and media playlist and
// records the rung done, or skipped when the quota has no room for it;
// it returns the rung's state.
func (s *Service) storeRung(ctx context.Context, r record, p planned, path string) (string, error) {
	ix, err := media.IndexFile(path)
	if err != nil {
		return "", fmt.Errorf("index rendition %d: %w", p.Height, err)
	}
	mp4, m3u8 := renditionFile(p.Height, ".mp4"), renditionFile(p.Height, ".m3u8")
	pl, err := media.MediaPlaylist(mp4, ix)
	if err != nil {
		return "", fmt.Errorf("playlist of rendition %d: %w", p.Height, err)
	}
	plPath, err := s.spoolBytes(pl)
	if err != nil {
		return "", err
	}
	defer func() { _ = os.Remove(plPath) }()
	files := []*derivedFile{
		{Name: mp4, Key: blobKey(r.ID, mp4), ContentType: mp4ContentType, path: path},
		{Name: m3u8, Key: blobKey(r.ID, m3u8), ContentType: hlsContentType, path: plPath},
	}
	row := rendition{Height: p.Height, Width: p.Width, State: renditionDone, CreatedAt: micros(s.now())}
	err = s.storeCharged(ctx, r.OwnerID, files, true)
	if errors.Is(err, errNoRoom) {
		s.log.Info("no room in the quota for a rendition; skipped", "video", r.ID, "height", p.Height)
		row.State, row.Reason, files = renditionSkipped, reasonQuota, nil
	} else if err != nil {
		return "", err
	} else {
		v := ix.Variant(m3u8)
		row.Bandwidth, row.AverageBandwidth, row.Codecs, row.FrameRate = v.Bandwidth, v.AverageBandwidth, v.Codecs, v.FrameRate
	}
	return row.State, s.recordFiles(ctx, r, files, func(ctx context.Context, q *sql.Tx) error {
		return s.store.putRendition(ctx, q, r.ID, row)
	})
}

// recordFiles records stored files of a video, and whatever and records,
// in one transaction, if the video is still live; otherwise (or on
// failure) it gives the files back.
func (s *Service) recordFiles(ctx context.Context, r record, files []*derivedFile, and func(context.Context, *sql.Tx) error) error {
	var live bool
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if live, err = s.store.claimLive(ctx, tx, r.ID); err != nil || !live {
			return err
		}
		if err := s.store.putFiles(ctx, tx, r.ID, files, micros(s.now())); err != nil {
			return err
		}
		return and(ctx, tx)
	})
	if err == nil && live {
		s.changed(r.ID)
		return nil
	}
	s.giveBack(ctx, r.OwnerID, files)
	if err != nil {
		return err
	}
	return errVideoGone
}

// jobInput is posterInput for a job that reads the file more than once
// (ffprobe, then ffmpeg): the poster worker removes the upload's spooled
// copy once the poster is cut, so the job reads it under a name of its
// own. Should the copy go before it is linked, the attempt fails and the
// next one reads the stored video.
func (s *Service) jobInput(ctx context.Context, r record) (string, func(), error) {
	path, done, err := s.posterInput(ctx, r)
	if err != nil || path != s.posterSource(r.ID) {
		return path, done, err
	}
	var salt [4]byte
	_, _ = rand.Read(salt[:])
	own := filepath.Join(s.cfg.SpoolDir, "upload-"+r.ID+"-"+hex.EncodeToString(salt[:])+".source")
	if err := os.Link(path, own); err != nil {
		return "", nil, fmt.Errorf("read the spooled upload: %w", err)
	}
	return own, func() { _ = os.Remove(own) }, nil
}

// workable reads a video for a job: ErrVideoNotFound when it is gone,
// errVideoGone when it is not a ready video out of the trash with its bytes
// charged.
func (s *Service) workable(ctx context.Context, id string) (record, error) {
	if !validID(id) {
		return record{}, ErrVideoNotFound
	}
	r, err := s.store.video(ctx, s.db.W, id)
	if err != nil {
		return record{}, err
	}
	if r.Status != StatusReady || r.DeletedAt != nil || r.QuotaState != quotaCharged {
		return record{}, errVideoGone
	}
	return r, nil
}

// cause turns the failure of work cancelled by watch into errVideoGone.
func (s *Service) cause(ctx context.Context, err error) error {
	if err != nil && errors.Is(context.Cause(ctx), errVideoGone) {
		return errVideoGone
	}
	return err
}

// streamingFailed records that a video's ladder will not be made.
func (s *Service) streamingFailed(ctx context.Context, id string, why error) {
	s.log.Warn("streaming failed", "video", id, "err", why)
	ctx, cancel := detached(ctx)
	defer cancel()
	if err := s.store.failStreaming(ctx, s.db.W, id); err != nil {
		s.log.Warn("record streaming failure", "video", id, "err", err)
	}
	s.changed(id)
}

// ladderProgress turns ffmpeg's progress into the ladder's percent, by
// the rungs' weights (pixels, a remux much less), and writes it at most
// every progressEvery.
type ladderProgress struct {
	s     *Service
	ctx   context.Context
	id    string
	total float64 // weight of the whole ladder
	done  float64 // of the rungs done or skipped
	stage float64 // of the rungs being made
	last  time.Time
	pct   int
}

// percent is the ladder's progress with frac (0 to 1) of the rungs being
// made done; 99 at most until the state is done.
func (p *ladderProgress) percent(frac float64) int {
	if p.total <= 0 {
		return 0
	}
	return max(0, min(99, int((p.done+frac*p.stage)/p.total*100)))
}

// report is media's progress callback.
func (p *ladderProgress) report(pr media.Progress) {
	pct := p.percent(pr.Percent / 100)
	if pct == p.pct || time.Since(p.last) < progressEvery {
		return
	}
	p.write(pct)
}

// force writes the percent now.
func (p *ladderProgress) force() { p.write(p.percent(0)) }

func (p *ladderProgress) write(pct int) {
	p.last, p.pct = time.Now(), pct
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	if err := p.s.store.setPercent(ctx, p.s.db.W, p.id, pct); err != nil && ctx.Err() == nil {
		p.s.log.Debug("streaming percent", "video", p.id, "err", err)
	}
}

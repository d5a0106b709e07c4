package web

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/storage"
	"github.com/reel-video/reel/internal/usage"
	"github.com/reel-video/reel/internal/videos"
)

// pageSize is how many videos a page lists (the API's default).
const pageSize = 16

// card is a video in a list.
type card struct {
	ID, Title, Owner, Status string
	Poster                   string // signed poster path, "" when there is none yet
	Duration                 float64
	Size                     int64
	Created                  time.Time
}

type listData struct {
	Q     string
	Cards []card
	Next  string // the next page's URL, "" on the last page
}

// listRequest reads a page's cursor.
func listRequest(r *http.Request) (page.Request, error) {
	return page.Parse(r.URL.Query().Get("cursor"), "", pageSize, pageSize)
}

// nextURL is the URL of the page after p, keeping the other parameters.
func nextURL(r *http.Request, next *string) string {
	if next == nil {
		return ""
	}
	q := r.URL.Query()
	q.Set("cursor", *next)
	return r.URL.Path + "?" + q.Encode()
}

// cards makes the list's cards and, when owners is set, looks up the
// owners' names (one call for the page).
func (a *App) cards(ctx context.Context, vs []Listed, owners bool) []card {
	out := make([]card, len(vs))
	var ids []string
	for i, v := range vs {
		out[i] = card{ID: v.ID, Title: v.Title, Status: v.Status, Duration: v.DurationSeconds, Size: v.SizeBytes, Created: v.CreatedAt, Poster: v.PosterPath}
		ids = append(ids, v.OwnerID)
	}
	if owners && len(vs) > 0 {
		names := a.names(ctx, ids)
		for i, v := range vs {
			out[i].Owner = names[v.OwnerID]
		}
	}
	return out
}

// names returns the usernames of ids, "someone" for any it could not find:
// a name is not worth failing a page for.
func (a *App) names(ctx context.Context, ids []string) map[string]string {
	found, err := a.accounts.usernames(ctx, ids)
	if err != nil {
		obs.Logger(ctx, a.log).LogAttrs(ctx, slog.LevelWarn, "look up owners' names", slog.String("err", err.Error()))
	}
	out := make(map[string]string, len(ids))
	for _, id := range ids {
		out[id] = "someone"
		if n, ok := found[id]; ok {
			out[id] = n
		}
	}
	return out
}

// home is the feed: everyone's ready videos, newest first, or those whose
// title contains the search text.
func (a *App) home(w http.ResponseWriter, r *http.Request, s *session) error {
	req, err := listRequest(r)
	if err != nil {
		return err
	}
	q := r.URL.Query().Get("q")
	p, err := a.d.Videos.Search(r.Context(), s.caller, q, req)
	if err != nil {
		return err
	}
	title := "Videos"
	if q != "" {
		title = "Search: " + q
	}
	v := a.view(s, title, "home")
	v.Notice = notice(r)
	v.Data = listData{Q: q, Cards: a.cards(r.Context(), p.Items, true), Next: nextURL(r, p.NextCursor)}
	a.render(w, r, http.StatusOK, "home.html", v)
	return nil
}

// rendition is a file of a video that plays in a plain <video src>: one
// rung of its adaptive-streaming ladder.
type rendition struct {
	Height, Width int
	Bandwidth     int64
	URL           string
}

// player is what the watch page plays. Without JavaScript the <video>
// plays Src; the page's script chooses among the rest (watch.js): native
// HLS where the browser has it, else a rendition fitting the player and
// the measured throughput, and the viewer's own choice of quality.
type player struct {
	Src        string
	Original   string
	Type       string // the original's media type
	HLS        string
	Storyboard string
	Renditions []rendition // tallest first, as the quality menu lists them
	// Preparing is the ladder's progress while more renditions are due.
	Preparing bool
	Percent   int
}

type watchData struct {
	Video  videos.Video
	Owner  string
	Poster string
	Player *player // nil when the video cannot be played now
	Egress usage.EgressCounter
	Left   int64 // viewing bytes left today, -1 unlimited
	UsedUp bool
	Resets time.Time
}

// noScriptHeight is the tallest rendition a page without JavaScript
// plays: good on most screens, and no 1080p stream on a phone.
const noScriptHeight = 720

// playerOf makes the player of a grant: the original until renditions
// exist, else the tallest rendition up to noScriptHeight.
func playerOf(vid videos.Video, g videos.Grant) *player {
	p := &player{Src: g.VideoPath, Original: g.VideoPath, Type: vid.ContentType, HLS: g.HLSPath, Storyboard: g.StoryboardPath}
	for i, r := range g.Renditions { // lowest first
		p.Renditions = append(p.Renditions, rendition{Height: r.Height, Width: r.Width, Bandwidth: r.Bandwidth, URL: r.Path})
		if i == 0 || r.Height <= noScriptHeight {
			p.Src = r.Path
		}
	}
	slices.Reverse(p.Renditions)
	st := vid.Streaming.State
	p.Preparing, p.Percent = st == "pending" || st == "running", vid.Streaming.Percent
	return p
}

// watch plays a video: its signed URLs in a plain <video>, and today's
// viewing allowance. A used-up allowance is said plainly instead of a
// player that would fail.
func (a *App) watch(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	todayAnswer := a.todayMeanwhile(ctx, s.user.ID)
	vid, err := a.d.Videos.Get(ctx, s.caller, r.PathValue("id"))
	today, uerr := todayAnswer()
	if err != nil {
		return err
	}
	if uerr != nil {
		return uerr
	}
	d := watchData{Video: vid, Egress: today.Egress, Left: -1, Resets: today.ResetsAt}
	if vid.OwnerID == s.user.ID {
		d.Owner = s.user.Username // no lookup for one's own video
	} else {
		d.Owner = a.names(ctx, []string{vid.OwnerID})[vid.OwnerID]
	}
	if lim := today.Egress.LimitBytes; lim >= 0 {
		d.Left = max(0, lim-today.Egress.UsedBytes)
		d.UsedUp = d.Left == 0
	}
	if vid.Status == videos.StatusReady && vid.DeletedAt == nil && !d.UsedUp {
		g, err := a.d.Videos.Play(ctx, s.caller, vid)
		if err != nil {
			return err
		}
		d.Poster = g.PosterPath
		d.Player = playerOf(vid, g)
	}
	v := a.view(s, vid.Title, "")
	v.Script = "js/watch.js"
	v.Data = d
	a.render(w, r, http.StatusOK, "watch.html", v)
	return nil
}

type uploadData struct {
	MaxSize int64
	Storage storage.Usage
	Today   usage.Status
	Form    bool // the plain form, for browsers without JavaScript
}

// uploadPage is the upload form; its script uploads over tus and checks
// each file against these figures (fetched afresh) before sending it.
func (a *App) uploadPage(w http.ResponseWriter, r *http.Request, s *session) error {
	st, today, err := a.figures(r.Context(), s.user.ID)
	if err != nil {
		return err
	}
	v := a.view(s, "Upload", "upload")
	v.Script = "js/upload.js"
	v.Data = uploadData{MaxSize: a.cfg.MaxUploadSize, Storage: st, Today: today, Form: a.d.API != nil}
	a.render(w, r, http.StatusOK, "upload.html", v)
	return nil
}

// todayMeanwhile asks for the user's usage today in the background and
// returns the wait for its answer: a page that needs another service's
// answer too waits for the slower of the two, not for both in turn.
func (a *App) todayMeanwhile(ctx context.Context, userID string) func() (usage.Status, error) {
	var (
		today usage.Status
		err   error
		wg    sync.WaitGroup
	)
	wg.Go(func() { today, err = a.d.Usage.Today(ctx, userID) })
	return func() (usage.Status, error) {
		wg.Wait()
		return today, err
	}
}

// figures are the user's storage and today's usage, asked at once.
func (a *App) figures(ctx context.Context, userID string) (storage.Usage, usage.Status, error) {
	todayAnswer := a.todayMeanwhile(ctx, userID)
	st, err := a.d.Storage.Usage(ctx, userID)
	today, uerr := todayAnswer()
	if err != nil {
		return storage.Usage{}, usage.Status{}, err
	}
	if uerr != nil {
		return storage.Usage{}, usage.Status{}, uerr
	}
	return st, today, nil
}

// mine lists the user's videos in every state but the trash.
func (a *App) mine(w http.ResponseWriter, r *http.Request, s *session) error {
	return a.renderMine(w, r, s, http.StatusOK, "")
}

func (a *App) renderMine(w http.ResponseWriter, r *http.Request, s *session, status int, errMsg string) error {
	req, err := listRequest(r)
	if err != nil {
		return err
	}
	p, err := a.d.Videos.Mine(r.Context(), s.caller, req)
	if err != nil {
		return err
	}
	v := a.view(s, "My videos", "mine")
	v.Script = "js/mine.js"
	v.Notice, v.Error = notice(r), errMsg
	v.Data = listData{Cards: a.cards(r.Context(), p.Items, false), Next: nextURL(r, p.NextCursor)}
	a.render(w, r, status, "mine.html", v)
	return nil
}

type trashItem struct {
	ID, Title        string
	Size             int64
	Deleted, PurgeAt time.Time
}

type trashData struct {
	Items []trashItem
	Next  string
}

// trash lists the user's deleted videos with the day each is purged.
func (a *App) trash(w http.ResponseWriter, r *http.Request, s *session) error {
	return a.renderTrash(w, r, s, http.StatusOK, "")
}

func (a *App) renderTrash(w http.ResponseWriter, r *http.Request, s *session, status int, errMsg string) error {
	req, err := listRequest(r)
	if err != nil {
		return err
	}
	p, err := a.d.Videos.Trash(r.Context(), s.caller, req)
	if err != nil {
		return err
	}
	d := trashData{Next: nextURL(r, p.NextCursor)}
	for _, t := range p.Items {
		it := trashItem{ID: t.ID, Title: t.Title, Size: t.SizeBytes, PurgeAt: t.PurgeAt}
		if t.DeletedAt != nil {
			it.Deleted = *t.DeletedAt
		}
		d.Items = append(d.Items, it)
	}
	v := a.view(s, "Trash", "trash")
	v.Notice, v.Error = notice(r), errMsg
	v.Data = d
	a.render(w, r, status, "trash.html", v)
	return nil
}

// The forms below answer a refusal on the page they came from, with the
// service's own message, and a success with a redirect (so a reload does
// not post again).

func (a *App) rename(w http.ResponseWriter, r *http.Request, s *session) error {
	title := r.PostFormValue("title")
	if _, err := a.d.Videos.Update(r.Context(), s.caller, r.PathValue("id"), videos.Patch{Title: &title}); err != nil {
		status, msg := a.message(r, err)
		return a.renderMine(w, r, s, status, msg)
	}
	http.Redirect(w, r, "/mine?done=renamed", http.StatusSeeOther)
	return nil
}

func (a *App) delete(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := a.d.Videos.Delete(r.Context(), s.caller, r.PathValue("id")); err != nil {
		status, msg := a.message(r, err)
		return a.renderMine(w, r, s, status, msg)
	}
	http.Redirect(w, r, "/mine?done=deleted", http.StatusSeeOther)
	return nil
}

func (a *App) restore(w http.ResponseWriter, r *http.Request, s *session) error {
	if _, err := a.d.Videos.Restore(r.Context(), s.caller, r.PathValue("id")); err != nil {
		status, msg := a.message(r, err)
		if status == http.StatusRequestEntityTooLarge {
			msg = "There is not enough room in your storage to restore this video. Move other videos to the trash first."
		}
		return a.renderTrash(w, r, s, status, msg)
	}
	http.Redirect(w, r, "/mine?done=restored", http.StatusSeeOther)
	return nil
}

// meters shows storage and today's volumes against their limits.
func (a *App) meters(w http.ResponseWriter, r *http.Request, s *session) error {
	st, today, err := a.figures(r.Context(), s.user.ID)
	if err != nil {
		return err
	}
	v := a.view(s, "Usage", "usage")
	v.Data = uploadData{MaxSize: a.cfg.MaxUploadSize, Storage: st, Today: today}
	a.render(w, r, http.StatusOK, "usage.html", v)
	return nil
}

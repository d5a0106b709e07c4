package web_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/reel-video/reel/internal/media/mediatest"
	"github.com/reel-video/reel/internal/platform/browsertest"
)

// The browser tests drive Debian's Chromium, headless, against a real
// all-in-one reel on loopback. Without Chromium they are skipped loudly on
// a laptop and fail in CI (CI=true), as the PostgreSQL tests do. Each saves
// screenshots at phone and desktop widths under $REEL_TEST_OUTPUT, else
// os.TempDir()/reel-web-shots.

func chromiumPath(t *testing.T) string { return browsertest.Path(t) }

// shotsDir is where screenshots go.
func shotsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("REEL_TEST_OUTPUT")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "reel-web-shots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tab is one browser tab (in a browser context of its own: its own
// cookies and storage) on a reel.
type tab struct {
	t    *testing.T
	ctx  context.Context
	r    *reel
	mu   sync.Mutex
	errs []string
}

// newBrowser starts Chromium for the test and returns its first tab.
func newBrowser(t *testing.T, r *reel) *tab {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() { cancelTime(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	t.Logf("screenshots in %s", shotsDir(t))
	return watchTab(t, ctx, r)
}

// another opens a tab with cookies of its own (another person).
func (tb *tab) another() *tab {
	ctx, cancel := chromedp.NewContext(tb.ctx, chromedp.WithNewBrowserContext())
	tb.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		tb.t.Fatal(err)
	}
	return watchTab(tb.t, ctx, tb.r)
}

// watchTab records uncaught exceptions and Content-Security-Policy
// refusals, which fail the test.
func watchTab(t *testing.T, ctx context.Context, r *reel) *tab {
	tb := &tab{t: t, ctx: ctx, r: r}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				tb.mu.Lock()
				tb.errs = append(tb.errs, m.String())
				tb.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for _, e := range tb.errs {
			t.Errorf("page error: %s", e)
		}
	})
	return tb
}

func (tb *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, steps...); err != nil {
		tb.t.Fatalf("browser: %v", err)
	}
}

// eval runs JavaScript (awaiting a promise) and returns its value.
func eval[T any](tb *tab, js string) T {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// until waits for a JavaScript condition, across navigations (which end
// the page's script context while it is asked).
func (tb *tab) until(js string) {
	tb.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		var ok bool
		ok, err = chromedp.Run(tb.ctx, chromedp.Evaluate[bool](`!!(`+js+`)`))
		if err == nil && ok {
			return
		}
		if tb.ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	body, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	tb.t.Fatalf("waiting for %s (last error %v)\npage %s:\n%s", js, err, tb.location(), body)
}

func (tb *tab) location() string {
	loc, _ := chromedp.Run(tb.ctx, chromedp.Location())
	return loc
}

func (tb *tab) open(path string) {
	tb.t.Helper()
	tb.do(chromedp.Navigate(tb.r.base + path))
}

// at waits until the tab shows a page whose path (and query) is path.
func (tb *tab) at(path string) {
	tb.t.Helper()
	tb.until(fmt.Sprintf(`location.pathname + location.search === %q && document.readyState === "complete"`, path))
}

func (tb *tab) text(sel string) string {
	tb.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		tb.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (tb *tab) fill(fields ...string) {
	tb.t.Helper()
	for i := 0; i+1 < len(fields); i += 2 {
		tb.do(chromedp.Clear(chromedp.CSS(fields[i])), chromedp.SendKeys(chromedp.CSS(fields[i]), fields[i+1]))
	}
}

// screen is a viewport the screenshots are taken at.
type screen struct {
	width, height int64
	mobile        bool
}

// screens are the phone and desktop widths of every screenshot.
var screens = []screen{{390, 844, true}, {1280, 900, false}}

// emulate sets the tab's viewport to s.
func (tb *tab) emulate(s screen) {
	var opts []chromedp.EmulateViewportOption
	if s.mobile {
		opts = append(opts, chromedp.EmulateMobile)
	}
	tb.do(chromedp.EmulateViewport(s.width, s.height, opts...))
}

// shot saves a screenshot of the whole page at phone and desktop widths.
func (tb *tab) shot(name string) {
	tb.t.Helper()
	dir := shotsDir(tb.t)
	for _, w := range screens {
		tb.emulate(w)
		eval[chromedp.Void](tb, `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))`)
		png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			tb.t.Fatalf("screenshot: %v", err)
		}
		file := filepath.Join(dir, fmt.Sprintf("%s-%s-%d.png", strings.ReplaceAll(strings.TrimPrefix(tb.t.Name(), "TestBrowser"), "/", "-"), name, w.width))
		if err := os.WriteFile(file, png, 0o644); err != nil {
			tb.t.Fatal(err)
		}
	}
	tb.do(chromedp.EmulateViewport(1280, 900))
}

// login signs in through the login form.
func (tb *tab) login(email, password string) {
	tb.t.Helper()
	tb.open("/login")
	tb.fill("#email", email, "#password", password)
	tb.do(chromedp.Click(chromedp.CSS("main button.primary")))
	tb.at("/")
}

// dark switches the page to the system's dark colour scheme, or back.
func (tb *tab) dark(on bool) {
	tb.t.Helper()
	scheme := "light"
	if on {
		scheme = "dark"
	}
	_, err := chromedp.Call(tb.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
	})
	if err != nil {
		tb.t.Fatal(err)
	}
}

// expire drops the access cookie, as the browser does when it expires,
// and returns the refresh token the browser holds.
func (tb *tab) expire() string {
	tb.t.Helper()
	if _, err := chromedp.Call(tb.ctx, network.DeleteCookies, network.DeleteCookiesParams{Name: "reel_access", URL: tb.r.base + "/"}); err != nil {
		tb.t.Fatal(err)
	}
	return tb.cookie("/auth/refresh", "reel_refresh")
}

// cookie returns the value of a cookie the browser would send to path.
func (tb *tab) cookie(path, name string) string {
	tb.t.Helper()
	res, err := chromedp.Call(tb.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{tb.r.base + path}})
	if err != nil {
		tb.t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if c.Name == name {
			if !c.HTTPOnly {
				tb.t.Errorf("cookie %s is readable by scripts", name)
			}
			return c.Value
		}
	}
	return ""
}

// throttle limits the tab's upload speed (bytes per second; -1: none).
func (tb *tab) throttle(up float64) { tb.limit(-1, up) }

// byRule is Network.emulateNetworkConditionsByRule as the browser has it:
// it wants the offline field that cdproto's parameters lack.
type byRuleParams struct {
	Offline    bool                  `json:"offline"`
	Conditions []*network.Conditions `json:"matchedNetworkConditions"`
}

var byRule = cdp.Command[byRuleParams, cdp.Empty]{Method: network.CommandEmulateNetworkConditionsByRule}

// limit limits the tab's download and upload speeds (bytes per second;
// -1: none), and what navigator.connection says of them.
func (tb *tab) limit(down, up float64) {
	tb.t.Helper()
	if _, err := chromedp.Call(tb.ctx, network.Enable, network.EnableParams{}); err != nil {
		tb.t.Fatal(err)
	}
	p := byRuleParams{Conditions: []*network.Conditions{{DownloadThroughput: down, UploadThroughput: up}}}
	if _, err := chromedp.Call(tb.ctx, byRule, p); err != nil {
		tb.t.Fatalf("emulate network conditions: %v", err)
	}
	_, err := chromedp.Call(tb.ctx, network.OverrideNetworkState, network.OverrideNetworkStateParams{DownloadThroughput: down, UploadThroughput: up, ConnectionType: network.ConnectionTypeWifi})
	if err != nil {
		tb.t.Fatalf("override network state: %v", err)
	}
}

// video makes a real 640×360 video of the given length, named name, for
// uploading.
func video(t *testing.T, dir, name string, seconds int) string {
	t.Helper()
	src := mediatest.Video(t, dir, seconds, 640, 360)
	dst := filepath.Join(dir, name)
	if err := os.Rename(src, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

package loadtest

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// Chart is a line chart rendered as standalone SVG: no script, no external
// resource, so it shows the same inlined in HTML, opened from disk, or as
// an image in Markdown.
type Chart struct {
	Title          string
	XLabel, YLabel string
	Width, Height  int // of the plot area plus axes; the legend adds height
	// LogY plots the y axis in decades, for latencies spanning 0.1 ms to
	// seconds. Values ≤ 0 are not drawn on a log axis.
	LogY bool
	// YUnit formats y tick labels: "ms" gives "0.1 ms … 1 s", "" plain.
	YUnit string
	// XMax fixes the x range (0 = the largest x of any point).
	XMax float64
	// Band shades [From, To] on the x axis with a label (the setup phase).
	Band *Band
	// Target draws a dashed horizontal line at a y value with a label.
	Target *Target
	Series []Series
}

// Band is a labelled x interval.
type Band struct {
	From, To float64
	Label    string
}

// Target is a labelled y value.
type Target struct {
	Y     float64
	Label string
}

// Series is one line. A NaN y breaks the line there.
type Series struct {
	Name   string
	Color  string
	Dashed bool
	Width  float64
	Points []XY
}

// XY is one point.
type XY struct{ X, Y float64 }

const (
	padLeft   = 62
	padRight  = 16
	padTop    = 30
	padBottom = 40
	legendRow = 18
)

// SVG renders the chart.
func (c Chart) SVG() string {
	w, h := max(c.Width, 240), max(c.Height, 140)
	pw, ph := float64(w-padLeft-padRight), float64(h-padTop-padBottom)

	// Ranges.
	xmax := c.XMax
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for _, p := range s.Points {
			if math.IsNaN(p.Y) || (c.LogY && p.Y <= 0) {
				continue
			}
			if c.XMax == 0 {
				xmax = max(xmax, p.X)
			}
			ymin, ymax = min(ymin, p.Y), max(ymax, p.Y)
		}
	}
	if c.Band != nil {
		xmax = max(xmax, c.Band.To)
	}
	if c.Target != nil {
		ymin, ymax = min(ymin, c.Target.Y), max(ymax, c.Target.Y)
	}
	if xmax <= 0 {
		xmax = 1
	}
	xstep := niceStep(xmax, 8)
	xmax = math.Ceil(xmax/xstep) * xstep
	var yticks []float64
	var ylo, yhi float64
	if c.LogY {
		if math.IsInf(ymin, 1) {
			ymin, ymax = 1, 10
		}
		ylo, yhi = math.Floor(math.Log10(ymin)), math.Ceil(math.Log10(ymax))
		if yhi <= ylo {
			yhi = ylo + 1
		}
		for d := ylo; d <= yhi; d++ {
			yticks = append(yticks, math.Pow(10, d))
		}
	} else {
		if math.IsInf(ymax, -1) || ymax <= 0 {
			ymax = 1
		}
		step := niceStep(ymax, 5)
		ylo, yhi = 0, math.Ceil(ymax/step)*step
		for v := 0.0; v <= yhi+step/2; v += step {
			yticks = append(yticks, v)
		}
	}
	px := func(x float64) float64 { return padLeft + x/xmax*pw }
	py := func(y float64) float64 {
		if c.LogY {
			return padTop + ph - (math.Log10(y)-ylo)/(yhi-ylo)*ph
		}
		return padTop + ph - (y-ylo)/(yhi-ylo)*ph
	}

	// Legend rows under the plot, laid out left to right.
	type entry struct {
		s    Series
		x, y float64
	}
	var legend []entry
	lx, ly := float64(padLeft), float64(h)+4
	for _, s := range c.Series {
		wd := 28 + 7*float64(len([]rune(s.Name)))
		if lx+wd > float64(w-padRight) && lx > padLeft {
			lx, ly = padLeft, ly+legendRow
		}
		legend = append(legend, entry{s, lx, ly})
		lx += wd + 10
	}
	total := h
	if len(legend) > 0 {
		total = int(ly) + legendRow
	}

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" font-family="system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif" font-size="11" role="img" aria-label="%s">`+"\n",
		w, total, w, total, esc(c.Title))
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/>`+"\n", w, total)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="13" font-weight="600" fill="#222">%s</text>`+"\n", padLeft, esc(c.Title))
	if c.Band != nil && c.Band.To > c.Band.From {
		x0, x1 := px(max(c.Band.From, 0)), px(min(c.Band.To, xmax))
		fmt.Fprintf(&b, `<rect class="band" x="%s" y="%d" width="%s" height="%s" fill="#f1f1f1"/>`+"\n", f1(x0), padTop, f1(x1-x0), f1(ph))
		fmt.Fprintf(&b, `<text x="%s" y="%d" fill="#888" font-size="10">%s</text>`+"\n", f1(x0+3), padTop+11, esc(c.Band.Label))
	}
	// Grid and ticks.
	for _, v := range yticks {
		y := py(v)
		fmt.Fprintf(&b, `<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="#e4e4e4"/>`, padLeft, f1(y), w-padRight, f1(y))
		fmt.Fprintf(&b, `<text x="%d" y="%s" text-anchor="end" fill="#555">%s</text>`+"\n", padLeft-6, f1(y+4), esc(tickLabel(v, c.YUnit)))
	}
	for v := 0.0; v <= xmax+xstep/2; v += xstep {
		x := px(v)
		fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#999"/>`, f1(x), f1(padTop+ph), f1(x), f1(padTop+ph+4))
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle" fill="#555">%s</text>`+"\n", f1(x), f1(padTop+ph+16), trimFloat(v))
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="#999"/>`+"\n", padLeft, f1(padTop+ph), w-padRight, f1(padTop+ph))
	fmt.Fprintf(&b, `<text x="%s" y="%d" text-anchor="middle" fill="#555">%s</text>`+"\n", f1(padLeft+pw/2), h-6, esc(c.XLabel))
	fmt.Fprintf(&b, `<text transform="translate(14 %s) rotate(-90)" text-anchor="middle" fill="#555">%s</text>`+"\n", f1(padTop+ph/2), esc(c.YLabel))
	if c.Target != nil && (!c.LogY || c.Target.Y > 0) {
		y := py(c.Target.Y)
		fmt.Fprintf(&b, `<line class="target" x1="%d" y1="%s" x2="%d" y2="%s" stroke="#c0392b" stroke-dasharray="6 4"/>`, padLeft, f1(y), w-padRight, f1(y))
		fmt.Fprintf(&b, `<text x="%d" y="%s" text-anchor="end" fill="#c0392b" font-size="10">%s</text>`+"\n", w-padRight-2, f1(y-3), esc(c.Target.Label))
	}
	// Lines, clipped to the plot.
	clip := "clip-" + slug(c.Title)
	fmt.Fprintf(&b, `<clipPath id="%s"><rect x="%d" y="%d" width="%s" height="%s"/></clipPath>`+"\n", clip, padLeft, padTop-2, f1(pw+2), f1(ph+4))
	for _, s := range c.Series {
		var d strings.Builder
		var dots []XY // points with no neighbour, which a path would not show
		run := 0
		for i, p := range s.Points {
			if math.IsNaN(p.Y) || (c.LogY && p.Y <= 0) {
				run = 0
				continue
			}
			cmd := "L"
			if run == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&d, "%s%s %s", cmd, f1(px(p.X)), f1(py(p.Y)))
			run++
			next := i + 1
			if run == 1 && (next == len(s.Points) || math.IsNaN(s.Points[next].Y) || (c.LogY && s.Points[next].Y <= 0)) {
				dots = append(dots, p)
			}
		}
		sw := s.Width
		if sw == 0 {
			sw = 1.5
		}
		for _, p := range dots {
			fmt.Fprintf(&b, `<circle class="dot" cx="%s" cy="%s" r="%s" fill="%s" clip-path="url(#%s)"/>`, f1(px(p.X)), f1(py(p.Y)), trimFloat(sw+1), esc(s.Color), clip)
		}
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="5 3"`
		}
		fmt.Fprintf(&b, `<path class="series" data-series="%s" clip-path="url(#%s)" d="%s" fill="none" stroke="%s" stroke-width="%s" stroke-linejoin="round"%s/>`+"\n",
			esc(s.Name), clip, d.String(), esc(s.Color), trimFloat(sw), dash)
	}
	for _, e := range legend {
		dash := ""
		if e.s.Dashed {
			dash = ` stroke-dasharray="5 3"`
		}
		fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="2.5"%s/>`, f1(e.x), f1(e.y+5), f1(e.x+20), f1(e.y+5), esc(e.s.Color), dash)
		fmt.Fprintf(&b, `<text x="%s" y="%s" fill="#333">%s</text>`+"\n", f1(e.x+25), f1(e.y+9), esc(e.s.Name))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceStep returns a step of 1, 2 or 5 times a power of ten that cuts
// [0, span] into at most about n intervals.
func niceStep(span float64, n int) float64 {
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func tickLabel(v float64, unit string) string {
	if unit != "ms" {
		return trimFloat(v)
	}
	if v >= 1000 {
		return trimFloat(v/1000) + " s"
	}
	return trimFloat(v) + " ms"
}

// trimFloat formats v with up to three decimals and no trailing zeros.
func trimFloat(v float64) string {
	s := strconv.FormatFloat(v, 'f', 3, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" {
		return "0"
	}
	return s
}

// slug keeps letters and digits of s, lower-cased, dashes between words:
// an id or file name derived from a title.
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	return b.String()
}

func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func esc(s string) string { return html.EscapeString(s) }

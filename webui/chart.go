package webui

import (
	"fmt"
	"time"

	"github.com/heraldhooks/herald"
)

// chartMinutes is how many minutes the webhook page's chart shows.
const chartMinutes = 60

// Geometry of the chart's SVG, in its own units (it scales to its box).
const (
	chartW      = 720
	chartH      = 200
	chartLeft   = 40 // room for the y axis labels
	chartBottom = 24 // room for the time labels
	chartTop    = 8
)

// chart is a stacked bar chart of attempts per minute by outcome, drawn
// on the server as inline SVG: no script, and readable without colour
// through each bar's title and the table beside it.
type chart struct {
	W, H        int
	Left, Base  int // x of the y axis, y of the time axis
	Bars        []bar
	Ticks       []tick
	Labels      []tick
	Max         int
	Delivered   int
	Rejected    int
	Unreachable int
	From, To    time.Time
	Rows        []herald.TimelineBucket // minutes with attempts, for the table
}

type bar struct {
	X, W  float64
	Segs  []seg
	Title string
}

type seg struct {
	Y, H  float64
	Class string
}

type tick struct {
	X, Y float64
	Text string
}

func newChart(buckets []herald.TimelineBucket) *chart {
	c := &chart{W: chartW, H: chartH, Left: chartLeft, Base: chartH - chartBottom}
	if len(buckets) == 0 {
		return c
	}
	c.From, c.To = buckets[0].Start, buckets[len(buckets)-1].Start.Add(time.Minute)
	for _, b := range buckets {
		c.Max = max(c.Max, b.Delivered+b.Rejected+b.Unreachable)
		c.Delivered += b.Delivered
		c.Rejected += b.Rejected
		c.Unreachable += b.Unreachable
		if b.Delivered+b.Rejected+b.Unreachable > 0 {
			c.Rows = append(c.Rows, b)
		}
	}
	top := niceMax(c.Max)
	plotH := float64(c.Base - chartTop)
	slot := float64(chartW-chartLeft) / float64(len(buckets))
	for i, b := range buckets {
		x := float64(chartLeft) + float64(i)*slot
		br := bar{X: x + slot*0.15, W: slot * 0.7,
			Title: fmt.Sprintf("%s UTC: %d delivered, %d rejected, %d unreachable", b.Start.UTC().Format("15:04"), b.Delivered, b.Rejected, b.Unreachable)}
		y := float64(c.Base)
		for _, part := range []struct {
			n     int
			class string
		}{{b.Delivered, "ok"}, {b.Rejected, "warn"}, {b.Unreachable, "bad"}} {
			if part.n == 0 {
				continue
			}
			h := plotH * float64(part.n) / float64(top)
			y -= h
			br.Segs = append(br.Segs, seg{Y: y, H: h, Class: part.class})
		}
		c.Bars = append(c.Bars, br)
		if i%10 == 0 {
			c.Labels = append(c.Labels, tick{X: x, Y: float64(chartH - 6), Text: b.Start.UTC().Format("15:04")})
		}
	}
	for _, v := range []int{0, top / 2, top} {
		y := float64(c.Base) - plotH*float64(v)/float64(top)
		c.Ticks = append(c.Ticks, tick{X: chartLeft - 6, Y: y, Text: fmt.Sprint(v)})
	}
	return c
}

// niceMax rounds the tallest bar up to an even number so the axis reads
// 0, half, top in whole numbers.
func niceMax(n int) int {
	if n < 2 {
		return 2
	}
	for _, step := range []int{2, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000} {
		if n <= step*5 {
			return (n + step - 1) / step * step
		}
	}
	return (n + 9999) / 10000 * 10000
}

package main

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// table is a plain-text table: a title, a header and rows, printed with
// every column padded to its widest cell. The first column is
// left-aligned and the others right-aligned, so that numbers line up.
type table struct {
	title  string
	header []string
	rows   [][]string
	notes  []string
}

// add appends a row; missing trailing cells print empty.
func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// note appends a line printed under the table.
func (t *table) note(format string, args ...any) {
	t.notes = append(t.notes, fmt.Sprintf(format, args...))
}

// print writes the table to w.
func (t *table) print(w io.Writer) {
	all := append([][]string{t.header}, t.rows...)
	var width []int
	for _, r := range all {
		for i, c := range r {
			if i == len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	fmt.Fprintln(w, t.title)
	for _, r := range all {
		var b strings.Builder
		for i := range width {
			c := ""
			if i < len(r) {
				c = r[i]
			}
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			switch {
			case i == 0:
				b.WriteString(c + pad)
			default:
				b.WriteString("  " + pad + c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	for _, n := range t.notes {
		fmt.Fprintln(w, n)
	}
	fmt.Fprintln(w)
}

// figures collects the machine-readable lines of a measurement, one per
// figure:
//
//	bench mode=<mode> n=<N> figure=<name> unit=<unit> value=<median> [min=<..> max=<..> runs=<k>]
//	bench mode=<mode> n=<N> figure=<name> status=failed error="<quoted>"
//
// Values measured over several runs carry their spread.
type figures struct {
	mode  string
	n     int
	lines []string
}

// add records a figure measured over runs.
func (f *figures) add(name, unit string, s summary) {
	line := f.head(name) + fmt.Sprintf(" unit=%s value=%s", unit, num(unit, s.med))
	if s.runs > 1 {
		line += fmt.Sprintf(" min=%s max=%s runs=%d", num(unit, s.min), num(unit, s.max), s.runs)
	}
	f.lines = append(f.lines, line)
}

// value records a figure measured once, or derived from other figures.
func (f *figures) value(name, unit string, v float64) {
	f.lines = append(f.lines, f.head(name)+fmt.Sprintf(" unit=%s value=%s", unit, num(unit, v)))
}

// failed records a measurement that did not complete.
func (f *figures) failed(name string, err error) {
	f.lines = append(f.lines, f.head(name)+fmt.Sprintf(" status=failed error=%q", err.Error()))
}

func (f *figures) head(name string) string {
	return fmt.Sprintf("bench mode=%s n=%d figure=%s", f.mode, f.n, name)
}

// print writes the lines to w.
func (f *figures) print(w io.Writer) {
	for _, l := range f.lines {
		fmt.Fprintln(w, l)
	}
}

// num formats a machine-readable value with the precision its unit needs.
func num(unit string, v float64) string {
	switch unit {
	case "msgs/s", "bytes", "count", "KiB":
		return fmt.Sprintf("%.0f", v)
	case "MiB":
		return fmt.Sprintf("%.1f", v)
	case "us":
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

// spread formats a summary for a table: the median, and the least and
// greatest value when there were several runs.
func spread(s summary, f func(float64) string) string {
	if s.runs < 2 {
		return f(s.med)
	}
	return fmt.Sprintf("%s [%s–%s]", f(s.med), f(s.min), f(s.max))
}

// thousands formats v rounded to an integer with thousands separators.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// fixed returns a formatter with the given decimals.
func fixed(decimals int) func(float64) string {
	return func(v float64) string { return fmt.Sprintf("%.*f", decimals, v) }
}

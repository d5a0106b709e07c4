package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

type str string

func (s *str) String() string     { return string(*s) }
func (s *str) Set(v string) error { *s = str(v); return nil }

// boolv is a switch: true/false, on/off, 1/0.
type boolv bool

func (b *boolv) String() string { return strconv.FormatBool(bool(*b)) }
func (b *boolv) Set(v string) error {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "on", "yes":
		*b = true
		return nil
	case "off", "no":
		*b = false
		return nil
	}
	x, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return errors.New("not a switch (true/false, on/off)")
	}
	*b = boolv(x)
	return nil
}

type intv int

func (i *intv) String() string { return strconv.Itoa(int(*i)) }
func (i *intv) Set(v string) error {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return errors.New("not a whole number")
	}
	*i = intv(n)
	return nil
}

// dur is a duration that also accepts a "d" (days) suffix, since retention
// periods are naturally said in days.
type dur time.Duration

func (d *dur) String() string { return time.Duration(*d).String() }
func (d *dur) Set(v string) error {
	x, err := ParseDuration(v)
	if err != nil {
		return err
	}
	*d = dur(x)
	return nil
}

// ParseDuration parses a Go duration or a whole number of days ("30d").
func ParseDuration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100000 {
			return 0, errors.New("not a duration (examples: 15m, 12h, 30d)")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	x, err := time.ParseDuration(v)
	if err != nil || x < 0 {
		return 0, errors.New("not a duration (examples: 15m, 12h, 30d)")
	}
	return x, nil
}

// size is a byte count: a number with an optional unit (B, KB, MB, GB, TB,
// KiB, MiB, GiB, TiB) or -1 for unlimited.
type size int64

func (s *size) String() string { return FormatSize(int64(*s)) }
func (s *size) Set(v string) error {
	n, err := ParseSize(v)
	if err != nil {
		return err
	}
	*s = size(n)
	return nil
}

var units = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1},
}

// ParseSize parses a byte size such as "50MiB", "2GiB", "1000000" or "-1"
// (unlimited).
func ParseSize(v string) (int64, error) {
	v = strings.TrimSpace(v)
	if v == "-1" {
		return -1, nil
	}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(strings.ToUpper(v), strings.ToUpper(u.suffix)) && len(v) > len(u.suffix) {
			num := strings.TrimSpace(v[:len(v)-len(u.suffix)])
			if _, err := strconv.ParseFloat(num, 64); err == nil {
				v, mult = num, u.mult
				break
			}
		}
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || f*float64(mult) > math.MaxInt64/2 {
		return 0, fmt.Errorf("not a size (examples: 50MiB, 2GiB, 1048576, -1 for unlimited)")
	}
	return int64(f * float64(mult)), nil
}

// FormatSize renders a byte count the way ParseSize reads it.
func FormatSize(n int64) string {
	switch {
	case n < 0:
		return "-1"
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10)
}

// stringList is a comma-separated list.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error {
	*l = nil
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

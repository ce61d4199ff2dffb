package checks

import (
	"fmt"
	"time"
)

// parseWMIDatetime parses a CIM_DATETIME as WMI prints it: yyyymmddHHMMSS.mmmmmmsUUU,
// where s is + or - and UUU the offset from UTC in minutes (docs/facts.md §5.2,
// checks/testdata/samples/wmi-datetime-sample.txt: 20011224113047.000000-480). The result carries that
// offset as a fixed zone, taken from z when it has it (nil: a new one).
func parseWMIDatetime(s string, z zones) (time.Time, error) {
	if len(s) != 25 || s[14] != '.' || (s[21] != '+' && s[21] != '-') {
		return time.Time{}, fmt.Errorf("WMI datetime %s: want yyyymmddHHMMSS.mmmmmm+UUU", quoted(s))
	}
	num := func(from, to int) (int, bool) {
		n := 0
		for i := from; i < to; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(4, 6)
	day, ok3 := num(6, 8)
	hour, ok4 := num(8, 10)
	minute, ok5 := num(10, 12)
	sec, ok6 := num(12, 14)
	micro, ok7 := num(15, 21)
	off, ok8 := num(22, 25)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && ok8) {
		return time.Time{}, fmt.Errorf("WMI datetime %q: not all digits", s)
	}
	if month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 60 || off > 14*60 {
		return time.Time{}, fmt.Errorf("WMI datetime %q: field out of range", s)
	}
	if s[21] == '-' {
		off = -off
	}
	zone := z.zone(off)
	t := time.Date(year, time.Month(month), day, hour, minute, sec, micro*1000, zone)
	if t.Day() != day && sec != 60 {
		return time.Time{}, fmt.Errorf("WMI datetime %q: no such day", s)
	}
	return t, nil
}

func offsetName(minutes int) string {
	sign := "+"
	if minutes < 0 {
		sign, minutes = "-", -minutes
	}
	return sign + fmt.Sprintf("%02d:%02d", minutes/60, minutes%60)
}

// zones holds the fixed zones of the UTC offsets met in one section: the System log prints
// the same offset on every event, and a zone per event would cost an allocation each. It
// holds at most the 1681 offsets parseWMIDatetime accepts.
type zones map[int]*time.Location

func (z zones) zone(off int) *time.Location {
	if l, ok := z[off]; ok {
		return l
	}
	l := time.FixedZone("UTC"+offsetName(off), off*60)
	if z != nil {
		z[off] = l
	}
	return l
}

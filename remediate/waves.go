package remediate

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/iisremedy/iisremedy/playbooks"
	"go.yaml.in/yaml/v3"
)

// Waves is a rollout in waves: a canary, then growing batches, each inside its maintenance
// window, halting when too many hosts of a wave fail.
type Waves struct {
	File       string // the waves file as given
	Inventory  string // the inventory file, relative paths taken from the waves file's folder
	Installers string
	Stage      string // push, pull or share ("" = push)
	Share      string
	// StageAhead lets staging run before a wave's window opens: only install and reboot wait.
	StageAhead    bool
	IncludeAtRisk bool
	Waves         []*Wave
}

// Wave is one batch of a rollout.
type Wave struct {
	Name   string
	Line   int
	Hosts  []string // inventory entries named
	Groups []string // inventory groups
	// Size takes hosts not named by any wave, in inventory order: a count, a share of the
	// inventory ("10%", rounded up), or "rest".
	Size        string
	Parallel    int // 0 = the command's --parallel
	MaxFailures string
	Window      *Window // nil = any time
	// After the wave: wait this long before the next one starts, and/or wait for `waves approve`.
	Pause   time.Duration
	Approve bool

	// Members are the inventory entries the wave works on, in inventory order.
	Members []string
}

// Window is a maintenance window: weekly (days, start and end time of day, the end on the next
// day when it is not after the start) or between two dates, in an IANA time zone. Outside it no
// install or reboot starts.
type Window struct {
	Zone       *time.Location
	Days       []time.Weekday // weekly
	Start, End time.Duration  // weekly: time of day
	From, To   time.Time      // dated
}

// Weekly reports a weekly window.
func (w *Window) Weekly() bool { return w.From.IsZero() }

// Next returns the window's next opening at or after t, or the one open at t (opens <= t), and
// when it closes; ok is false when it never opens again. Local times a DST change skips or
// repeats resolve as Go's time.Date resolves them.
func (w *Window) Next(t time.Time) (opens, closes time.Time, ok bool) {
	if !w.Weekly() {
		return w.From, w.To, w.To.After(t)
	}
	local := t.In(w.Zone)
	day := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, w.Zone)
	for i := -1; i <= 8; i++ {
		d := day.AddDate(0, 0, i)
		if !slices.Contains(w.Days, d.Weekday()) {
			continue
		}
		o := atTime(d, w.Start)
		c := atTime(d, w.End)
		if w.End <= w.Start {
			c = atTime(d.AddDate(0, 0, 1), w.End)
		}
		if c.After(t) {
			return o, c, true
		}
	}
	return time.Time{}, time.Time{}, false
}

// Open reports whether the window is open at t.
func (w *Window) Open(t time.Time) bool {
	if w == nil {
		return true
	}
	o, _, ok := w.Next(t)
	return ok && !o.After(t)
}

func atTime(day time.Time, tod time.Duration) time.Time {
	return time.Date(day.Year(), day.Month(), day.Day(), int(tod/time.Hour), int(tod%time.Hour/time.Minute), 0, 0, day.Location())
}

// String describes the window in its own zone.
func (w *Window) String() string {
	if !w.Weekly() {
		return fmt.Sprintf("%s to %s (%s)", w.From.Format("2006-01-02 15:04"), w.To.Format("2006-01-02 15:04"), w.Zone)
	}
	days := make([]string, len(w.Days))
	for i, d := range w.Days {
		days[i] = d.String()[:3]
	}
	if len(days) == 7 {
		days = []string{"daily"}
	}
	hm := func(d time.Duration) string {
		return fmt.Sprintf("%02d:%02d", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%s %s-%s (%s)", strings.Join(days, ","), hm(w.Start), hm(w.End), w.Zone)
}

// WavesError is bad input in a waves file: every problem, with line and field.
type WavesError = playbooks.Errors

var (
	waveNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	hhmmRe     = regexp.MustCompile(`^([01][0-9]|2[0-3]):([0-5][0-9])$`)
	dayNames   = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
		"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}
)

// maxWavesFile bounds a waves file.
const maxWavesFile = 4 << 20

// LoadWaves reads and checks a waves file and assigns the inventory's hosts to its waves. Every
// problem — syntax, unknown fields, unknown hosts or groups, a host in two waves, bad sizes,
// zones and percentages, a window that never opens (as of now) — is reported at once with its
// line and field.
func LoadWaves(file string, now time.Time) (*Waves, *Inventory, error) {
	data, err := readBounded(file, maxWavesFile)
	if err != nil {
		return nil, nil, WavesError{{File: file, Msg: err.Error()}}
	}
	root, err := playbooks.ParseYAML(file, data, "waves file")
	if err != nil {
		return nil, nil, err
	}
	d := &wavesDecoder{YAMLDecoder: playbooks.YAMLDecoder{File: file}, now: now}
	w := &Waves{File: file}
	d.waves(root, w)
	if len(d.Errs) > 0 {
		return nil, nil, d.Errs
	}
	if w.Inventory != "" && !filepath.IsAbs(w.Inventory) {
		w.Inventory = filepath.Join(filepath.Dir(file), w.Inventory)
	}
	if w.Installers != "" && !filepath.IsAbs(w.Installers) {
		w.Installers = filepath.Join(filepath.Dir(file), w.Installers)
	}
	f, err := os.Open(w.Inventory)
	if err != nil {
		return nil, nil, WavesError{{File: file, Line: d.inventoryLine, Field: "inventory", Msg: err.Error()}}
	}
	defer f.Close()
	inv, err := ParseInventory(w.Inventory, f)
	if err != nil {
		return nil, nil, err
	}
	if errs := d.assign(w, inv); len(errs) > 0 {
		return nil, nil, errs
	}
	return w, inv, nil
}

func readBounded(file string, limit int64) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() || st.Size() > limit {
		return nil, fmt.Errorf("not a waves file (a regular file of at most %d bytes)", limit)
	}
	data := make([]byte, st.Size())
	_, err = f.ReadAt(data, 0)
	return data, err
}

type wavesDecoder struct {
	playbooks.YAMLDecoder
	now           time.Time
	inventoryLine int
	zone          *time.Location
	nodes         map[*Wave]map[string]*yaml.Node // where each wave's fields are, for assignment errors
}

func (d *wavesDecoder) waves(n *yaml.Node, w *Waves) {
	var wavesNode *yaml.Node
	d.Mapping(n, "", map[string]playbooks.FieldFunc{
		"inventory": func(v *yaml.Node, f string) {
			d.inventoryLine = v.Line
			d.Text(v, f, &w.Inventory)
		},
		"installers": func(v *yaml.Node, f string) { d.Text(v, f, &w.Installers) },
		"stage": func(v *yaml.Node, f string) {
			if s, ok := d.Str(v, f); ok {
				if s != StagePush && s != StagePull && s != StageShare {
					d.Errf(v, f, "%q: want push, pull or share", s)
				}
				w.Stage = s
			}
		},
		"share":       func(v *yaml.Node, f string) { d.Text(v, f, &w.Share) },
		"stage_ahead": func(v *yaml.Node, f string) { w.StageAhead = d.boolean(v, f) },
		"include_at_risk": func(v *yaml.Node, f string) {
			w.IncludeAtRisk = d.boolean(v, f)
		},
		"timezone": func(v *yaml.Node, f string) { d.zone = d.location(v, f) },
		"waves":    func(v *yaml.Node, f string) { wavesNode = v },
	}, "inventory", "waves")
	if wavesNode == nil {
		return
	}
	names := map[string]int{}
	d.nodes = map[*Wave]map[string]*yaml.Node{}
	d.List(wavesNode, "waves", func(v *yaml.Node, f string) {
		wv := &Wave{Line: v.Line}
		d.nodes[wv] = map[string]*yaml.Node{}
		d.wave(v, f, wv)
		if wv.Name != "" {
			if first, dup := names[wv.Name]; dup {
				d.Errf(v, f+".name", "wave %s is named twice (first at line %d)", wv.Name, first)
			}
			names[wv.Name] = v.Line
		}
		w.Waves = append(w.Waves, wv)
	})
	if len(wavesNode.Content) == 0 && wavesNode.Kind == yaml.SequenceNode {
		d.Errf(wavesNode, "waves", "empty: a rollout has at least one wave")
	}
}

func (d *wavesDecoder) boolean(v *yaml.Node, f string) bool {
	s, ok := d.Str(v, f)
	if !ok {
		return false
	}
	if v.Tag != "!!bool" {
		d.Errf(v, f, "%q: want true or false", s)
		return false
	}
	return s == "true"
}

func (d *wavesDecoder) location(v *yaml.Node, f string) *time.Location {
	s, ok := d.Str(v, f)
	if !ok {
		return nil
	}
	loc, err := time.LoadLocation(s)
	if err != nil || s == "" || s == "Local" {
		d.Errf(v, f, "%q is not an IANA time zone like Europe/Berlin or UTC", s)
		return nil
	}
	return loc
}

func (d *wavesDecoder) wave(n *yaml.Node, field string, wv *Wave) {
	nodes := d.nodes[wv]
	d.Mapping(n, field, map[string]playbooks.FieldFunc{
		"name": func(v *yaml.Node, f string) {
			if s, ok := d.Str(v, f); ok {
				if !waveNameRe.MatchString(s) {
					d.Errf(v, f, "%q: want letters, digits, _ . -", s)
					return
				}
				wv.Name = s
			}
		},
		"hosts": func(v *yaml.Node, f string) {
			nodes["hosts"] = v
			wv.Hosts = d.Strings(v, f, nil)
		},
		"groups": func(v *yaml.Node, f string) {
			nodes["groups"] = v
			wv.Groups = d.Strings(v, f, nil)
		},
		"size": func(v *yaml.Node, f string) {
			nodes["size"] = v
			s, ok := d.Str(v, f)
			if !ok {
				return
			}
			if _, _, err := parseShare(s, true); err != nil {
				d.Errf(v, f, "%q: %v", s, err)
				return
			}
			wv.Size = s
		},
		"parallel": func(v *yaml.Node, f string) {
			if x, ok := d.Integer(v, f, 1, 1000); ok {
				wv.Parallel = int(x)
			}
		},
		"max_failures": func(v *yaml.Node, f string) {
			s, ok := d.Str(v, f)
			if !ok {
				return
			}
			if _, _, err := parseShare(s, false); err != nil {
				d.Errf(v, f, "%q: %v", s, err)
				return
			}
			wv.MaxFailures = s
		},
		"window": func(v *yaml.Node, f string) { wv.Window = d.window(v, f) },
		"after": func(v *yaml.Node, f string) {
			s, ok := d.Str(v, f)
			if !ok {
				return
			}
			for _, part := range strings.Split(s, ",") {
				part = strings.TrimSpace(part)
				switch {
				case part == "approve":
					wv.Approve = true
				case strings.HasPrefix(part, "pause "):
					p, err := time.ParseDuration(strings.TrimSpace(strings.TrimPrefix(part, "pause ")))
					if err != nil || p <= 0 || p > 30*24*time.Hour {
						d.Errf(v, f, "%q: want pause DURATION like pause 2h (at most 30 days)", part)
						continue
					}
					wv.Pause = p
				default:
					d.Errf(v, f, "%q: want pause DURATION, approve, or both (\"pause 1h, approve\")", part)
				}
			}
		},
	}, "name")
	if wv.Size == "" && len(wv.Hosts) == 0 && len(wv.Groups) == 0 {
		d.Errf(n, field, "wave %s names no hosts: give hosts, groups or size", wv.Name)
	}
}

// parseShare reads a count ("5"), a percentage ("10%") or, for a size, "rest".
func parseShare(s string, size bool) (count int, percent float64, err error) {
	if size && s == "rest" {
		return -1, 0, nil
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v <= 0 || v > 100 || math.IsNaN(v) {
			return 0, 0, fmt.Errorf("want a share above 0%% and at most 100%%")
		}
		return 0, v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		if size {
			return 0, 0, fmt.Errorf("want a count like 5, a share like 10%%, or rest")
		}
		return 0, 0, fmt.Errorf("want a count like 3 or a share like 10%%")
	}
	return v, 0, nil
}

func (d *wavesDecoder) window(n *yaml.Node, field string) *Window {
	w := &Window{Zone: d.zone}
	var days []string
	var start, end, from, to string
	var zoneNode, daysNode, startNode, fromNode *yaml.Node
	d.Mapping(n, field, map[string]playbooks.FieldFunc{
		"zone": func(v *yaml.Node, f string) {
			zoneNode = v
			if loc := d.location(v, f); loc != nil {
				w.Zone = loc
			}
		},
		"days": func(v *yaml.Node, f string) {
			daysNode = v
			if v.Kind == yaml.ScalarNode && v.Value == "daily" {
				days = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
				return
			}
			days = d.Strings(v, f, func(e *yaml.Node, ef, s string) bool {
				if _, ok := dayNames[strings.ToLower(s)]; !ok {
					d.Errf(e, ef, "%q: want a day like mon or sat", s)
					return false
				}
				return true
			})
		},
		"start": func(v *yaml.Node, f string) { startNode = v; start, _ = d.Str(v, f) },
		"end":   func(v *yaml.Node, f string) { end, _ = d.Str(v, f) },
		"from":  func(v *yaml.Node, f string) { fromNode = v; from, _ = d.Str(v, f) },
		"to":    func(v *yaml.Node, f string) { to, _ = d.Str(v, f) },
	})
	if n.Kind != yaml.MappingNode {
		return nil
	}
	if w.Zone == nil {
		if zoneNode == nil {
			d.Errf(n, field+".zone", "missing: give the window's IANA time zone (or timezone: for the file)")
		}
		return nil
	}
	weekly := daysNode != nil || startNode != nil
	dated := fromNode != nil
	switch {
	case weekly && dated:
		d.Errf(n, field, "either days, start and end, or from and to; not both")
		return nil
	case weekly:
		at := startNode
		if at == nil {
			at = n
		}
		sd, ok1 := d.timeOfDay(at, field+".start", start)
		ed, ok2 := d.timeOfDay(n, field+".end", end)
		if !ok1 || !ok2 {
			return nil
		}
		w.Start, w.End = sd, ed
		for _, s := range days {
			wd := dayNames[strings.ToLower(s)]
			if !slices.Contains(w.Days, wd) {
				w.Days = append(w.Days, wd)
			}
		}
		switch {
		case daysNode == nil:
			d.Errf(n, field+".days", "missing: give the days (like [sat, sun] or daily)")
		case len(w.Days) == 0:
			d.Errf(daysNode, field+".days", "no days: the window never opens")
		case w.Start == w.End:
			d.Errf(at, field+".end", "the window opens and closes at %s: it is never open", start)
		}
	case dated:
		var ok1, ok2 bool
		w.From, ok1 = d.dateTime(fromNode, field+".from", from, w.Zone)
		w.To, ok2 = d.dateTime(n, field+".to", to, w.Zone)
		if !ok1 || !ok2 {
			return nil
		}
		switch {
		case !w.To.After(w.From):
			d.Errf(fromNode, field+".to", "the window closes before it opens: it never opens")
		case !w.To.After(d.now):
			d.Errf(fromNode, field+".to", "the window closed at %s: it never opens again", w.To.Format("2006-01-02 15:04 MST"))
		}
	default:
		d.Errf(n, field, "give days, start and end (weekly), or from and to (dates)")
		return nil
	}
	return w
}

func (d *wavesDecoder) timeOfDay(n *yaml.Node, field, s string) (time.Duration, bool) {
	m := hhmmRe.FindStringSubmatch(s)
	if m == nil {
		d.Errf(n, field, "%q: want a time of day HH:MM like 22:00", s)
		return 0, false
	}
	h, _ := strconv.Atoi(m[1])
	mm, _ := strconv.Atoi(m[2])
	return time.Duration(h)*time.Hour + time.Duration(mm)*time.Minute, true
}

func (d *wavesDecoder) dateTime(n *yaml.Node, field, s string, zone *time.Location) (time.Time, bool) {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, zone)
	if err != nil {
		d.Errf(n, field, "%q: want a date and time like 2026-12-05 22:00", s)
		return time.Time{}, false
	}
	return t, true
}

// assign gives each wave its hosts: first those named by hosts and groups (a host in two
// waves is an error), then the sized waves take the hosts no wave names, in inventory order.
func (d *wavesDecoder) assign(w *Waves, inv *Inventory) playbooks.Errors {
	var errs playbooks.Errors
	bad := func(wv *Wave, field, format string, args ...any) {
		line := wv.Line
		if n := d.nodes[wv][field]; n != nil {
			line = n.Line
		}
		errs = append(errs, &playbooks.Error{File: w.File, Line: line, Field: fmt.Sprintf("waves[%s].%s", wv.Name, field), Msg: fmt.Sprintf(format, args...)})
	}
	byEntry := map[string]bool{}
	groups := map[string][]string{}
	for _, h := range inv.Hosts {
		byEntry[h.Entry] = true
		groups[h.Group] = append(groups[h.Group], h.Entry)
	}
	owner := map[string]*Wave{}
	take := func(wv *Wave, entry, field string) {
		if prev := owner[entry]; prev != nil && prev != wv {
			bad(wv, field, "%s is already in wave %s: a host goes in one wave", entry, prev.Name)
			return
		}
		if owner[entry] == nil {
			owner[entry] = wv
		}
	}
	for _, wv := range w.Waves {
		for _, e := range wv.Hosts {
			if !byEntry[e] {
				bad(wv, "hosts", "%s is not a host of %s (write it as the inventory does)", e, inv.File)
				continue
			}
			take(wv, e, "hosts")
		}
		for _, g := range wv.Groups {
			members, ok := groups[g]
			if !ok || g == "" {
				bad(wv, "groups", "%s is not a group of %s (its groups: %s)", g, inv.File, strings.Join(inv.Groups, ", "))
				continue
			}
			for _, e := range members {
				take(wv, e, "groups")
			}
		}
	}
	var free []string
	for _, h := range inv.Hosts {
		if owner[h.Entry] == nil {
			free = append(free, h.Entry)
		}
	}
	restSeen := false
	for _, wv := range w.Waves {
		if wv.Size == "" {
			continue
		}
		if restSeen {
			bad(wv, "size", "comes after a wave of size rest, which takes every host left")
			continue
		}
		count, percent, _ := parseShare(wv.Size, true)
		switch {
		case count < 0:
			restSeen = true
			count = len(free)
		case percent > 0:
			count = int(math.Ceil(percent / 100 * float64(len(inv.Hosts))))
		}
		count = min(count, len(free))
		if count == 0 {
			bad(wv, "size", "no host is left for this wave")
			continue
		}
		for _, e := range free[:count] {
			owner[e] = wv
		}
		free = free[count:]
	}
	for _, h := range inv.Hosts {
		if wv := owner[h.Entry]; wv != nil {
			wv.Members = append(wv.Members, h.Entry)
		}
	}
	return errs
}

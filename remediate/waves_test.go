package remediate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iisremedy/iisremedy/playbooks"
)

const wavesInventory = `[canary]
web01
[farm]
web02
web03
web04
web05
[db]
db01
db02
[late]
web06
web07
web08
`

// writeWaves writes an inventory and a waves file beside it and returns the waves file's path.
func writeWaves(t *testing.T, waves string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hosts.txt"), []byte(wavesInventory), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "waves.yaml")
	if err := os.WriteFile(path, []byte(waves), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var wavesNow = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func TestLoadWavesAssigns(t *testing.T) {
	path := writeWaves(t, `inventory: hosts.txt
installers: sp2
timezone: Europe/Berlin
stage_ahead: true
waves:
  - name: canary
    groups: [canary]
    parallel: 1
    max_failures: 1
    window: {days: [sat], start: "22:00", end: "04:00"}
    after: approve
  - name: batch
    size: 30%
    max_failures: 20%
    after: pause 2h
  - name: dbs
    groups: [db]
  - name: rest
    size: rest
    window: {zone: UTC, from: "2026-12-20 22:00", to: "2026-12-21 04:00"}
`)
	w, _, err := LoadWaves(path, wavesNow)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"web01"}, {"web02", "web03", "web04"}, {"db01", "db02"}, {"web05", "web06", "web07", "web08"}} // 30% of 10 hosts is 3
	for i, wv := range w.Waves {
		if strings.Join(wv.Members, ",") != strings.Join(want[i], ",") {
			t.Errorf("wave %s: %v, want %v", wv.Name, wv.Members, want[i])
		}
	}
	if !w.StageAhead || !w.Waves[0].Approve || w.Waves[1].Pause != 2*time.Hour || w.Installers != filepath.Join(filepath.Dir(path), "sp2") {
		t.Errorf("settings: %+v %+v %+v", w, w.Waves[0], w.Waves[1])
	}
}

// TestLoadWavesRefusesBadFiles: every problem at once, each with its line and field.
func TestLoadWavesRefusesBadFiles(t *testing.T) {
	path := writeWaves(t, `inventory: hosts.txt
waves:
  - name: canary
    hosts: [web01, web99]
    groups: [nosuch]
    window: {zone: Mars/Olympus, days: [sat], start: "22:00", end: "04:00"}
  - name: again
    hosts: [web01]
    size: 150%
    max_failures: ten
  - name: never
    groups: [farm]
    window: {zone: UTC, days: [], start: "22:00", end: "04:00"}
  - name: closed
    size: 2
    window: {zone: UTC, from: "2020-01-01 22:00", to: "2020-01-02 04:00"}
  - name: backwards
    size: 1
    window: {zone: UTC, from: "2027-01-02 22:00", to: "2027-01-01 04:00"}
  - name: nozone
    size: 1
    window: {days: daily, start: "01:00", end: "01:00"}
  - name: bad
    size: 1
    after: soon
    colour: blue
`)
	_, _, err := LoadWaves(path, wavesNow)
	var es playbooks.Errors
	if !errors.As(err, &es) {
		t.Fatalf("err %v", err)
	}
	msg := err.Error()
	for _, want := range []string{
		":6: waves[0].window.zone: \"Mars/Olympus\" is not an IANA time zone",
		":9: waves[1].size: \"150%\": want a share above 0% and at most 100%",
		":10: waves[1].max_failures: \"ten\": want a count like 3 or a share like 10%",
		":13: waves[2].window.days: no days: the window never opens",
		":16: waves[3].window.to: the window closed at 2020-01-02 04:00 UTC: it never opens again",
		":19: waves[4].window.to: the window closes before it opens",
		":22: waves[5].window.zone: missing",
		":25: waves[6].after: \"soon\": want pause DURATION, approve",
		":26: waves[6].colour: unknown field",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("no %q in:\n%s", want, msg)
		}
	}
	// Past the syntax, the hosts: unknown host and group, a host in two waves.
	path = writeWaves(t, `inventory: hosts.txt
waves:
  - name: canary
    hosts: [web01, web99]
    groups: [nosuch]
  - name: again
    hosts: [web01]
  - name: rest
    size: rest
  - name: late
    size: 1
`)
	_, _, err = LoadWaves(path, wavesNow)
	msg = err.Error()
	for _, want := range []string{
		":4: waves[canary].hosts: web99 is not a host of",
		":5: waves[canary].groups: nosuch is not a group of",
		":7: waves[again].hosts: web01 is already in wave canary",
		":11: waves[late].size: comes after a wave of size rest",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("no %q in:\n%s", want, msg)
		}
	}
}

// TestWindowAcrossMidnightAndDST: a weekly window that crosses midnight closes the next day;
// across the spring DST change in its zone it is an hour shorter in real time.
func TestWindowAcrossMidnightAndDST(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	w := &Window{Zone: berlin, Days: []time.Weekday{time.Saturday}, Start: 22 * time.Hour, End: 4 * time.Hour}
	// Saturday 2026-03-28 22:00 CET; DST starts Sunday 2026-03-29 at 02:00 (to 03:00 CEST).
	friday := time.Date(2026, 3, 27, 12, 0, 0, 0, berlin)
	o, c, ok := w.Next(friday)
	if !ok || o.UTC() != time.Date(2026, 3, 28, 21, 0, 0, 0, time.UTC) || c.UTC() != time.Date(2026, 3, 29, 2, 0, 0, 0, time.UTC) {
		t.Errorf("next window %v - %v", o.UTC(), c.UTC())
	}
	if c.Sub(o) != 5*time.Hour {
		t.Errorf("the window lasts %s across the DST change, want 5h", c.Sub(o))
	}
	if w.Open(friday) || !w.Open(time.Date(2026, 3, 29, 1, 30, 0, 0, berlin)) || w.Open(time.Date(2026, 3, 29, 4, 0, 0, 0, berlin)) {
		t.Error("Open")
	}
	// Inside the window, Next returns the open one; after it, next Saturday's.
	o2, _, _ := w.Next(time.Date(2026, 3, 29, 0, 30, 0, 0, berlin))
	o3, _, _ := w.Next(time.Date(2026, 3, 29, 5, 0, 0, 0, berlin))
	if !o2.Equal(o) || o3.In(berlin).Format("2006-01-02 15:04") != "2026-04-04 22:00" {
		t.Errorf("inside: %v, after: %v", o2, o3)
	}
}

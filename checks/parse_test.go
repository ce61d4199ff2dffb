package checks

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sampleBody reads a file of /work/shared/samples-style content kept in testdata, without
// its "# source" comment lines.
func sampleBody(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile("testdata/samples/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, l := range strings.SplitAfter(string(data), "\n") {
		if !strings.HasPrefix(l, "# ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "")
}

func TestParseRegQuery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       string
		wantKeys []regKey
	}{
		{
			name:     "reg.exe 3.0 sample (checks/testdata/samples/reg-query-regexe-v3.txt)",
			in:       "! REG.EXE VERSION 3.0\n\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\n    DevicePath  REG_EXPAND_SZ   %SystemRoot%\\inf\n",
			wantKeys: []regKey{{Path: `HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion`, Values: []regValue{{"DevicePath", "REG_EXPAND_SZ", `%SystemRoot%\inf`}}}},
		},
		{
			name:     "reg.exe 3.0 <NO NAME> (checks/testdata/samples/reg-query-regexe-v3-noname.txt)",
			in:       "! REG.EXE VERSION 3.0\r\n\r\nHKEY_CURRENT_USER\\mailto\\shell\\open\\command\r\n    <NO NAME>   REG_EXPAND_SZ   \"%ProgramFiles%\\Outlook Express\\msimn.exe\" /mailurl:%1\r\n",
			wantKeys: []regKey{{Path: `HKEY_CURRENT_USER\mailto\shell\open\command`, Values: []regValue{{"", "REG_EXPAND_SZ", `"%ProgramFiles%\Outlook Express\msimn.exe" /mailurl:%1`}}}},
		},
		{
			name: "tabs, empty data, value names with spaces, subkeys",
			in:   "\r\n! REG.EXE VERSION 3.0\r\n\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\X\r\n    RegDone\tREG_SZ\t\r\n    Current Build\tREG_SZ\t1.511.1 () (Obsolete data - do not use)\r\n    N\tREG_DWORD\t0x409\r\n    M\tREG_MULTI_SZ\ta\\0b\\0\\0\r\n\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\X\\Sub\r\n",
			wantKeys: []regKey{
				{Path: `HKEY_LOCAL_MACHINE\SOFTWARE\X`, Values: []regValue{{"RegDone", "REG_SZ", ""}, {"Current Build", "REG_SZ", "1.511.1 () (Obsolete data - do not use)"}, {"N", "REG_DWORD", "0x409"}, {"M", "REG_MULTI_SZ", `a\0b\0\0`}}},
				{Path: `HKEY_LOCAL_MACHINE\SOFTWARE\X\Sub`},
			},
		},
		{
			name:     "later layout without header, four-space separators",
			in:       "\r\nHKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Nls\\Language\r\n    InstallLanguage    REG_SZ    0409\r\n\r\n",
			wantKeys: []regKey{{Path: `HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Control\Nls\Language`, Values: []regValue{{"InstallLanguage", "REG_SZ", "0409"}}}},
		},
		{
			name: "missing key: error text (localized, not matched)",
			in:   "\r\nERROR: The system was unable to find the specified registry key or value\r\n",
		},
		{
			name: "german error text",
			in:   "FEHLER: Der angegebene Registrierungsschlüssel bzw. Wert wurde nicht gefunden.\r\n",
		},
		{name: "empty", in: ""},
		{name: "garbage", in: "\x00\xff REG_\tREG_SZ\n\t\t", wantKeys: []regKey{{Values: []regValue{{"\x00\xff REG_", "REG_SZ", ""}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := parseRegQuery(tt.in)
			if !reflect.DeepEqual(got.Keys, tt.wantKeys) {
				t.Errorf("Keys = %#v, want %#v", got.Keys, tt.wantKeys)
			}
		})
	}
}

func TestParseRegQuerySamples(t *testing.T) {
	t.Parallel()
	q := parseRegQuery(sampleBody(t, "reg-query-regexe-v3.txt"))
	if v, ok := q.Value("devicepath"); !ok || v.Data != `%SystemRoot%\inf` || len(q.Keys) != 1 {
		t.Errorf("got %#v", q)
	}
	q = parseRegQuery(sampleBody(t, "reg-query-regexe-v3-noname.txt"))
	if v, ok := q.Value(""); !ok || v.Type != "REG_EXPAND_SZ" {
		t.Errorf("got %#v", q)
	}
}

func TestRegValueHelpers(t *testing.T) {
	t.Parallel()
	if n, ok := (regValue{Data: "0x409"}).number(); !ok || n != 0x409 {
		t.Errorf("Uint(0x409) = %d, %v", n, ok)
	}
	if n, ok := (regValue{Data: "6"}).number(); !ok || n != 6 {
		t.Errorf("Uint(6) = %d, %v", n, ok)
	}
	if _, ok := (regValue{Data: "0xzz"}).number(); ok {
		t.Error("Uint(0xzz) ok")
	}
}

func TestParseWMICList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []wmiInstance
	}{
		{
			name: "datafile, \\r\\r\\n, lower-case paths, two instances",
			in:   "\r\r\n\r\r\nName=c:\\windows\\system32\\inetsrv\\adsiis.dll\r\r\nVersion=6.0.3790.3959\r\r\n\r\r\n\r\r\nName=c:\\windows\\system32\\inetsrv\\iis.msc\r\r\nVersion=\r\r\n\r\r\n\r\r\n",
			want: []wmiInstance{
				{"Name": `c:\windows\system32\inetsrv\adsiis.dll`, "Version": "6.0.3790.3959"},
				{"Name": `c:\windows\system32\inetsrv\iis.msc`, "Version": ""},
			},
		},
		{
			name: "banner first, CRLF",
			in:   "Please wait while WMIC is being installed.\r\n\r\nFreeSpace=5368709120\r\nSize=21474836480\r\n\r\n",
			want: []wmiInstance{{"FreeSpace": "5368709120", "Size": "21474836480"}},
		},
		{
			name: "instances without blank lines between are split on a repeated property",
			in:   "EventCode=1009\nTimeGenerated=20100615085501.000000-000\nEventCode=1002\nTimeGenerated=20100615085503.000000-000\n",
			want: []wmiInstance{
				{"EventCode": "1009", "TimeGenerated": "20100615085501.000000-000"},
				{"EventCode": "1002", "TimeGenerated": "20100615085503.000000-000"},
			},
		},
		{
			name: "value with = and braces",
			in:   "InsertionStrings={\"a=b\",\"1\"}\r\r\n",
			want: []wmiInstance{{"InsertionStrings": `{"a=b","1"}`}},
		},
		{name: "no instances", in: "No Instance(s) Available.\r\n"},
		{name: "german banner and error", in: "Bitte warten Sie, während WMIC installiert wird.\r\nFEHLER:\r\nBeschreibung = Ungültiger Namespace\r\n"},
		{name: "garbage", in: "=x\n==\n a b=c\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := instances(tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("instances = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestParseWMIArray(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{`{"DefaultAppPool","1234","ffffffff"}`, []string{"DefaultAppPool", "1234", "ffffffff"}},
		{`{"DefaultAppPool"}`, []string{"DefaultAppPool"}},
		{`{"Pool, with comma","1", "0x80"}`, []string{"Pool, with comma", "1", "0x80"}},
		{`{"say "hi"","2"}`, []string{`say "hi"`, "2"}},
		{`{1,2, 3}`, []string{"1", "2", "3"}},
		{`{}`, nil},
		{``, nil},
		{`plain`, []string{"plain"}},
		{`{"unterminated`, []string{"unterminated"}},
	}
	for _, tt := range tests {
		if got, _ := parseWMIArray(tt.in, maxInserts); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseWMIArray(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseSCQuery(t *testing.T) {
	t.Parallel()
	english := "\r\nSERVICE_NAME: w3svc\r\n        TYPE               : 20  WIN32_SHARE_PROCESS\r\n        STATE              : 4  RUNNING\r\n                                (STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN)\r\n        WIN32_EXIT_CODE    : 0  (0x0)\r\n        SERVICE_EXIT_CODE  : 0  (0x0)\r\n        CHECKPOINT         : 0x0\r\n        WAIT_HINT          : 0x0\r\n\r\n"
	german := "\r\nSERVICE_NAME: w3svc\r\n        TYP                : 20  WIN32_SHARE_PROCESS\r\n        STATUS             : 1  STOPPED\r\n                                (NOT_STOPPABLE, NOT_PAUSABLE, IGNORES_SHUTDOWN)\r\n        WIN32_EXIT_CODE    : 1077  (0x435)\r\n        SERVICE_EXIT_CODE  : 0  (0x0)\r\n        CHECKPOINT         : 0x0\r\n        WAIT_HINT          : 0x0\r\n"
	french := "\nNOM_SERVICE : w3svc\n        TYPE               : 20  WIN32_SHARE_PROCESS\n        ÉTAT               : 3  STOP_PENDING\n        CODE_SORTIE_WIN32  : 0  (0x0)\n"
	displayName := "SERVICE_NAME: w3svc\r\nDISPLAY_NAME: World Wide Web Publishing Service\r\n        TYPE               : 20  WIN32_SHARE_PROCESS\r\n        STATE              : 4  RUNNING\r\n"
	two := french + "\nNOM_SERVICE : other\n        TYPE               : 20  WIN32_SHARE_PROCESS\n        ÉTAT               : 4  RUNNING\n"
	tests := []struct {
		name      string
		in        string
		wantState int
		wantOK    bool
	}{
		{"english running", english, 4, true},
		{"german labels stopped", german, 1, true},
		{"french labels, LF, short", french, 3, true},
		{"display name line after the name", displayName, 4, true},
		{"two services: the first counts", two, 3, true},
		{"service missing (rc 1060)", "[SC] EnumQueryServicesStatus:OpenService FAILED 1060:\r\n\r\nThe specified service does not exist as an installed service.\r\n", 0, false},
		{"localized error with a colon", "FEHLER: Der angegebene Dienst ist nicht installiert.\r\n", 0, false},
		{"state out of range", "SERVICE_NAME: x\n  TYPE : 20\n  STATE : 99 WEIRD\n", 0, false},
		{"state not a number", "SERVICE_NAME: x\n  TYPE : 20\n  STATE : RUNNING\n", 0, false},
		{"fields before any name", "  TYPE : 20\n  STATE : 4 RUNNING\n", 0, false},
		{"empty", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			state, ok := parseSCQuery(tt.in)
			if ok != tt.wantOK || state != tt.wantState {
				t.Errorf("parseSCQuery = %d, %v; want %d, %v", state, ok, tt.wantState, tt.wantOK)
			}
		})
	}
}

func TestParseWMIDatetime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		wantUTC string
		wantErr bool
	}{
		{"20011224113047.000000-480", "2001-12-24T19:30:47Z", false}, // checks/testdata/samples/wmi-datetime-sample.txt
		{"20100615093000.375000+120", "2010-06-15T07:30:00.375Z", false},
		{"20100615085501.000000-000", "2010-06-15T08:55:01Z", false},
		{"20100615085501.000000+000", "2010-06-15T08:55:01Z", false},
		{"20100615093000.375000+330", "2010-06-15T04:00:00.375Z", false},
		{"20100231000000.000000+000", "", true},
		{"20101315000000.000000+000", "", true},
		{"2010061509300.375000+120", "", true},
		{"20100615093000.375000*120", "", true},
		{"2010061509300a.375000+120", "", true},
		{"********093000.000000+000", "", true},
		{"", "", true},
	}
	for _, tt := range tests {
		got, err := parseWMIDatetime(tt.in, nil)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseWMIDatetime(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && got.UTC().Format(time.RFC3339Nano) != tt.wantUTC {
			t.Errorf("parseWMIDatetime(%q) = %s, want %s", tt.in, got.UTC().Format(time.RFC3339Nano), tt.wantUTC)
		}
	}
	got, _ := parseWMIDatetime("20011224113047.000000-480", nil)
	if _, off := got.Zone(); off != -480*60 {
		t.Errorf("offset = %d s, want %d", off, -480*60)
	}
}

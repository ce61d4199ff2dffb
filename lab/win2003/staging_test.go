package win2003_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/iisremedy/iisremedy/lab/win2003"
)

// TestStagingChunkedAndRaw: base64 appended in chunks across commands decodes to the catalogue
// image; a raw binary streamed through findstr keeps its hash; a PowerShell hash script reports it;
// the host keeps a size and a hash, not the bytes.
func TestStagingChunkedAndRaw(t *testing.T) {
	h, err := win2003.NewScenario("affected", win2003.Options{Seed: 31, Clock: win2003.NewManualClock(win2003.DefaultStart)})
	if err != nil {
		t.Fatal(err)
	}
	img := win2003.NewInstallerImage("x86", "0409", 0)
	name, size, sum := img.Name, img.Size, img.SHA256
	b64 := b64Lines("x86", "0409")
	exec(t, h, `mkdir C:\stage`, nil)
	for i, chunk := 0, 100*1024; i < len(b64); i += chunk {
		end := min(i+chunk, len(b64))
		op := ">>"
		if i == 0 {
			op = ">"
		}
		if _, e, rc := exec(t, h, `findstr "^" `+op+` C:\stage\sp2.b64`, b64[i:end]); rc != 0 {
			t.Fatalf("chunk %d: %s", i, e)
		}
	}
	out, e, rc := exec(t, h, `certutil -decode C:\stage\sp2.b64 C:\stage\`+name, nil)
	if rc != 0 || !strings.Contains(out, "completed successfully") {
		t.Fatalf("decode: %q %q %d", out, e, rc)
	}
	hashPS := `powershell -NoProfile -Command "$s=[IO.File]::OpenRead('C:\stage\` + name + `');$h=[Security.Cryptography.SHA256]::Create().ComputeHash($s);[BitConverter]::ToString($h) -replace '-',''"`
	out, _, rc = exec(t, h, hashPS, nil)
	if rc != 0 || strings.TrimSpace(out) != strings.ToUpper(sum) {
		t.Errorf("hash on host %q rc=%d, want %s", out, rc, strings.ToUpper(sum))
	}
	out, _, _ = exec(t, h, `wmic datafile where "Name='C:\\stage\\`+name+`'" get FileSize /format:list`, nil)
	if !strings.Contains(out, "FileSize="+strconv.FormatInt(size, 10)) {
		t.Errorf("size on host: %q", out)
	}
	// raw binary through findstr
	raw, _ := io.ReadAll(img.Open())
	if _, e, rc := exec(t, h, `findstr "^" > C:\stage\raw.exe`, raw); rc != 0 {
		t.Fatal(e)
	}
	out, _, _ = exec(t, h, strings.ReplaceAll(hashPS, name, "raw.exe"), nil)
	if strings.TrimSpace(out) != strings.ToUpper(sum) {
		t.Errorf("raw upload hash %q, want %s", out, sum)
	}
}

// TestConcurrentExec runs commands and requests on one host from many goroutines (run with -race):
// every command line must complete with its full output.
func TestConcurrentExec(t *testing.T) {
	h, err := win2003.NewScenario("affected", win2003.Options{Seed: 32, Clock: win2003.NewManualClock(win2003.DefaultStart)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := `C:\f` + string(rune('a'+i)) + `.txt`
			var out, errb bytes.Buffer
			rc := h.Exec(context.Background(), `cmd /v:on /c "sc query w3svc&wmic os get BuildNumber /format:list&echo x`+strconv.Itoa(i)+`> `+f+`&type `+f+`&tasklist /fi "imagename eq lsass.exe" /fo csv /nh"`, nil, &out, &errb)
			h.Request(80)
			o := out.String()
			for _, want := range []string{"SERVICE_NAME: w3svc\r\n", "BuildNumber=3790", "x" + strconv.Itoa(i) + "\r\n", `"lsass.exe","472",`} {
				if !strings.Contains(o, want) {
					errs <- fmt.Sprintf("goroutine %d: output lacks %q: %q (stderr %q, rc %d)", i, want, o, errb.String(), rc)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

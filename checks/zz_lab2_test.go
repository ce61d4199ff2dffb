package checks

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/iisremedy/iisremedy/lab/win2003"
)

func fileFormCommand() string {
	parts := append([]string(nil), setP...)
	for _, s := range probeV1 {
		cmd := strings.ReplaceAll(s.Command, "%SystemDrive%", "!SystemDrive!")
		parts = append(parts, beginMarker(s.Name)+`>>C:\p.txt`, cmd+` >>C:\p.txt`, endMarker(s.Name)+`>>C:\p.txt`)
	}
	return `cmd /v:on /c "` + strings.Join(parts, "&") + `"`
}

func TestZZLabFile(t *testing.T) {
	for _, sc := range []string{"affected", "spanish", "healthy", "no-iis"} {
		for seed := int64(1); seed <= 3; seed++ {
			spec, _ := win2003.ScenarioSpec(sc, seed)
			spec.WMICInstalled = seed == 1
			h, _ := win2003.New(spec, win2003.Options{Seed: seed})
			var out, errb bytes.Buffer
			rc := h.Exec(context.Background(), fileFormCommand(), nil, &out, &errb)
			out.Reset()
			rc2 := h.Exec(context.Background(), `type C:\p.txt`, nil, &out, &errb)
			c, err := ParseCapture(out.Bytes())
			if err != nil {
				t.Errorf("%s: %v rc %d %d %q %q", sc, err, rc, rc2, out.String(), errb.String())
				continue
			}
			encs := map[string]string{}
			for _, s := range c.Sections {
				encs[s.Name] = s.Encoding
			}
			f := c.Facts()
			fd := Diagnose(f, nil)
			fmt.Printf("%s/%d: %s want %s enc=%v problems=%v\n", sc, seed, fd.Verdict, h.Verdict(), encs["inetsrv"]+"/"+encs["events"], f.Problems)
		}
	}
}

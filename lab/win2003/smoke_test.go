package win2003_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/iisremedy/iisremedy/checks"
	"github.com/iisremedy/iisremedy/lab/win2003"
	"github.com/iisremedy/iisremedy/playbooks"
)

func TestSmoke(t *testing.T) {
	name := os.Getenv("SMOKE")
	if name == "" {
		t.Skip("SMOKE unset")
	}
	h, err := win2003.NewScenario(name, win2003.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	rc := h.Exec(context.Background(), checks.ProbeCommand(), nil, &out, &errb)
	fmt.Printf("rc=%d\n%s\n--stderr--\n%s\n", rc, out.String(), errb.String())
	f, err := checks.ParseFacts(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	pb := playbooks.Default()
	fd := checks.Diagnose(f, pb)
	fmt.Printf("verdict=%s want %s\n%v\n", fd.Verdict, h.Verdict(), fd.Evidence)
}

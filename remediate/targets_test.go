package remediate

import (
	"errors"
	"strings"
	"testing"
)

// TestResolveTargetsReportsAllInUserWords: settings that parse but cannot work are reported
// together, each as file:line: field: message, naming what to write instead.
func TestResolveTargetsReportsAllInUserWords(t *testing.T) {
	inv, err := ParseInventory("hosts.txt", strings.NewReader(strings.Join([]string{
		"web01",
		"web02 auth=basic",
		"web03 auth=kerberos",
		"web04 https=true tls=legacy",
		"web05 https=true auth=Basic",
		"[fe80::1%eth0]:5985 auth=NTLM",
	}, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ResolveTargets(inv, TargetDefaults{User: "Administrator", Auth: "negotiate"})
	var es InventoryErrors
	if !errors.As(err, &es) {
		t.Fatalf("err %v", err)
	}
	want := []string{
		"hosts.txt:2: auth: basic over plain HTTP sends the password readable: add https=true",
		"hosts.txt:3: auth: kerberos is not supported yet",
		"hosts.txt:4: tls: tls=legacy needs tls_fingerprint=",
	}
	if len(es) != len(want) {
		t.Fatalf("%d problems, want %d:\n%v", len(es), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(es[i].Error(), w) {
			t.Errorf("problem %d = %q, want prefix %q", i, es[i].Error(), w)
		}
	}
	if strings.Contains(err.Error(), "AllowUnencrypted") || strings.Contains(err.Error(), "insecure") {
		t.Errorf("internal names in %q", err)
	}

	// The command line's --auth basic on plain HTTP blames the flag, not a line.
	inv, _ = ParseInventory("hosts.txt", strings.NewReader("web01\n"))
	_, err = ResolveTargets(inv, TargetDefaults{User: "Administrator", Auth: "Basic"})
	if err == nil || !strings.Contains(err.Error(), "hosts.txt:1: --auth: basic over plain HTTP") || !strings.Contains(err.Error(), "--allow-unencrypted") {
		t.Errorf("--auth basic over http: %v", err)
	}
	hosts, err := ResolveTargets(inv, TargetDefaults{User: "Administrator", Auth: "basic", AllowUnencrypted: true})
	if err != nil || hosts[0].Target.Auth != "basic" || !hosts[0].Target.AllowUnencrypted {
		t.Errorf("with --allow-unencrypted: %v %+v", err, hosts)
	}
}

// TestResolveTargetsZone: a link-local IPv6 address keeps its zone for dialing.
func TestResolveTargetsZone(t *testing.T) {
	inv, err := ParseInventory("hosts.txt", strings.NewReader("[fe80::1%eth0]:5985 auth=ntlm user=CORP\\svc\n"))
	if err != nil {
		t.Fatal(err)
	}
	hosts, err := ResolveTargets(inv, TargetDefaults{User: "Administrator", Auth: "negotiate"})
	if err != nil {
		t.Fatal(err)
	}
	tg := hosts[0].Target
	if tg.Host != "fe80::1%eth0" || tg.Port != 5985 || tg.Auth != "negotiate" || tg.User != `CORP\svc` {
		t.Errorf("target %+v", tg)
	}
	if tg.URL() != "http://[fe80::1%eth0]:5985/wsman" {
		t.Errorf("URL %s", tg.URL())
	}
}

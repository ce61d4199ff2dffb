package remediate

import (
	"context"
	"errors"
	"strings"

	"github.com/iisremedy/iisremedy/remote"
)

// Host is an inventory host with the WinRM target it resolves to. The target carries no
// password: the Dialer adds it.
type Host struct {
	InventoryHost
	Target remote.Target
}

// TargetDefaults are the command line's WinRM settings, which a host's own inventory
// settings override.
type TargetDefaults struct {
	User             string
	Auth             string // negotiate (ntlm is an alias) or basic; any case
	AllowUnencrypted bool   // --allow-unencrypted: Basic over plain HTTP
}

// NormalizeAuth returns the canonical name of an authentication scheme as a user may write
// it (Negotiate, NTLM, basic, ...), or "" for a scheme iisremedy does not know.
func NormalizeAuth(s string) string {
	switch a := strings.ToLower(strings.TrimSpace(s)); a {
	case "negotiate", "ntlm":
		return remote.AuthNegotiate
	case "basic", "kerberos", "certificate":
		return a
	}
	return ""
}

// ResolveTargets builds every host's WinRM target from its inventory settings over def.
// Settings that cannot work (Basic over plain HTTP without --allow-unencrypted, an auth
// scheme not built yet, legacy TLS without a pinned certificate) are reported all at once
// as InventoryErrors, file:line: field: message, in the words the user writes.
func ResolveTargets(inv *Inventory, def TargetDefaults) ([]Host, error) {
	var errs InventoryErrors
	bad := func(h InventoryHost, field, msg string) {
		errs = append(errs, &InventoryError{File: inv.File, Line: h.Line, Field: field, Msg: msg})
	}
	hosts := make([]Host, 0, len(inv.Hosts))
	for _, h := range inv.Hosts {
		auth, authField := NormalizeAuth(def.Auth), "--auth"
		if h.Auth != "" {
			auth, authField = NormalizeAuth(h.Auth), "auth"
		}
		t := remote.Target{
			Host: h.Host, Port: h.Port, HTTPS: h.HTTPS, Auth: auth, User: def.User,
			AllowUnencrypted: def.AllowUnencrypted,
		}
		if h.User != "" {
			t.User = h.User
		}
		t.TLS.Fingerprint = h.TLSFingerprint
		t.TLS.LegacyTLS = h.TLS == "legacy"
		n := len(errs)
		switch auth {
		case "kerberos", "certificate":
			bad(h, authField, auth+" is not supported yet; use negotiate (NTLM with encryption) or basic")
		case remote.AuthBasic:
			if !h.HTTPS && !def.AllowUnencrypted {
				bad(h, authField, "basic over plain HTTP sends the password readable: add https=true (with tls_fingerprint= for a self-signed certificate), use auth=negotiate, or pass --allow-unencrypted")
			}
		}
		if t.TLS.LegacyTLS && t.TLS.Fingerprint == "" {
			bad(h, "tls", "tls=legacy needs tls_fingerprint= (the SHA-256 of the host's certificate): Server 2003's SHA-1 certificates cannot be verified otherwise")
		}
		if len(errs) == n {
			if err := t.Validate(); err != nil {
				var re *remote.Error
				if errors.As(err, &re) {
					err = re.Err // the reason, without the "remote: dial" framing
				}
				bad(h, "host", err.Error())
			}
		}
		hosts = append(hosts, Host{InventoryHost: h, Target: t})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return hosts, nil
}

// WinRMDialer returns the Dialer that opens a WinRM session to a host with password, which
// it adds to the host's target and nowhere else.
func WinRMDialer(password string, opts ...remote.Option) Dialer {
	return func(ctx context.Context, h Host) (Session, error) {
		t := h.Target
		t.Password = password
		s, err := remote.Dial(ctx, t, opts...)
		if err != nil {
			// A nil *remote.Session in a non-nil interface would look like a session.
			return nil, err
		}
		return s, nil
	}
}

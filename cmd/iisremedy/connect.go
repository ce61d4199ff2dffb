package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/iisremedy/iisremedy/remediate"
	"github.com/iisremedy/iisremedy/remote"
	"github.com/spf13/pflag"
)

// connectOptions are the flags of the commands that connect to hosts over WinRM.
type connectOptions struct {
	User             string
	PasswordEnv      string
	Auth             string
	Parallel         int
	AllowUnencrypted bool
	ProbeTimeout     time.Duration

	// getenv reads the environment; tests replace it.
	getenv func(string) string
}

// addFlags adds the WinRM flags; credentials says whether the command logs in with the
// user's credentials (the lab makes up its own).
func (o *connectOptions) addFlags(f *pflag.FlagSet, credentials bool) {
	o.User, o.PasswordEnv = "Administrator", "IISREMEDY_PASSWORD"
	if credentials {
		f.StringVarP(&o.User, "user", "u", o.User, "user name for WinRM (DOMAIN\\user or user@domain for a domain account)")
		f.StringVar(&o.PasswordEnv, "password-env", o.PasswordEnv, "name of the environment variable holding the password (a prompt on a terminal when unset)")
	}
	f.StringVar(&o.Auth, "auth", "negotiate", "WinRM authentication: negotiate (NTLM with encryption; ntlm is the same) or basic")
	f.IntVar(&o.Parallel, "parallel", 20, "hosts worked on at once")
	f.BoolVar(&o.AllowUnencrypted, "allow-unencrypted", false, "allow Basic authentication over plain HTTP (the password crosses the network readable)")
	f.DurationVar(&o.ProbeTimeout, "probe-timeout", remediate.DefaultProbeTimeout, "longest a host's read-only probe may take, connecting and retries included")
}

func (o *connectOptions) validate() error {
	switch remediate.NormalizeAuth(o.Auth) {
	case remote.AuthNegotiate, remote.AuthBasic:
		o.Auth = remediate.NormalizeAuth(o.Auth)
	case "kerberos", "certificate":
		return usageErrorf("--auth %s: not supported yet; use negotiate or basic", strings.ToLower(o.Auth))
	default:
		return usageErrorf("--auth %q: want negotiate (or ntlm) or basic", o.Auth)
	}
	if o.Parallel < 1 || o.Parallel > 1000 {
		return usageErrorf("--parallel %d: want 1 to 1000", o.Parallel)
	}
	if o.PasswordEnv == "" {
		return usageErrorf("--password-env: empty variable name")
	}
	if o.ProbeTimeout <= 0 {
		return usageErrorf("--probe-timeout %s: want a positive duration", o.ProbeTimeout)
	}
	return nil
}

func (o *connectOptions) defaults() remediate.TargetDefaults {
	return remediate.TargetDefaults{User: o.User, Auth: o.Auth, AllowUnencrypted: o.AllowUnencrypted}
}

// password returns the WinRM password: the environment variable named by --password-env, else
// a prompt on the terminal, which Ctrl-C ends. It is never taken from a flag value, which would
// end up in shell history and process listings.
func (o *connectOptions) password(ctx context.Context, ios *ioStreams) (string, error) {
	if p := o.getenv(o.PasswordEnv); p != "" {
		return p, nil
	}
	if !ios.CanPrompt() {
		return "", usageErrorf("no password: set $%s (or run on a terminal to be asked)", o.PasswordEnv)
	}
	fmt.Fprintf(ios.ErrOut, "Password for %s: ", o.User)
	b, err := ios.readPassword(ctx)
	fmt.Fprintln(ios.ErrOut)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("read password: %w", err)
	}
	p := strings.TrimRight(string(b), "\r\n")
	if p == "" {
		return "", usageErrorf("empty password")
	}
	return p, nil
}

// resolveTargets gives every inventory host its WinRM target, every problem reported at once
// as bad input, and prints the security downgrades the targets allow, once per kind, naming
// the hosts.
func resolveTargets(ios *ioStreams, quiet bool, inv *remediate.Inventory, def remediate.TargetDefaults) ([]remediate.Host, error) {
	hosts, err := remediate.ResolveTargets(inv, def)
	if err != nil {
		return nil, asUsage(err)
	}
	var kinds []string
	hostsOf := map[string][]string{}
	for _, h := range hosts {
		for _, w := range h.Target.Warnings() {
			kind := strings.TrimPrefix(w, h.Target.Host+": ")
			if hostsOf[kind] == nil {
				kinds = append(kinds, kind)
			}
			hostsOf[kind] = append(hostsOf[kind], h.Entry)
		}
	}
	if !quiet {
		for _, kind := range kinds {
			fmt.Fprintf(ios.ErrOut, "warning: %s: %s\n", kind, hostList(hostsOf[kind]))
		}
	}
	return hosts, nil
}

// hostList names a few hosts and counts the rest.
func hostList(hosts []string) string {
	const shown = 3
	if len(hosts) <= shown {
		return strings.Join(hosts, ", ")
	}
	return fmt.Sprintf("%s and %d more hosts", strings.Join(hosts[:shown], ", "), len(hosts)-shown)
}

// plural writes n and the noun, "1 host", "2 hosts".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

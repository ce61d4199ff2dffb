package win2003

import (
	"fmt"
	"sort"
	"strings"
)

// registry is a flat map of keys by upper-case full path (HKEY_LOCAL_MACHINE\...).
type registry struct {
	keys map[string]*regKey
}

type regKey struct {
	path   string // as created, with the full root name
	values []regValue
}

type regValue struct {
	name string // "" = the default value
	typ  string // REG_SZ, REG_EXPAND_SZ, REG_DWORD, REG_MULTI_SZ, REG_BINARY
	data string // REG_DWORD: decimal or 0x hex; REG_MULTI_SZ: parts joined by \x00; REG_BINARY: hex
}

var regRoots = map[string]string{
	"HKLM": "HKEY_LOCAL_MACHINE", "HKEY_LOCAL_MACHINE": "HKEY_LOCAL_MACHINE",
	"HKCU": "HKEY_CURRENT_USER", "HKEY_CURRENT_USER": "HKEY_CURRENT_USER",
	"HKCR": "HKEY_CLASSES_ROOT", "HKEY_CLASSES_ROOT": "HKEY_CLASSES_ROOT",
	"HKU": "HKEY_USERS", "HKEY_USERS": "HKEY_USERS",
	"HKCC": "HKEY_CURRENT_CONFIG", "HKEY_CURRENT_CONFIG": "HKEY_CURRENT_CONFIG",
}

// canonKey turns HKLM\a\b into HKEY_LOCAL_MACHINE\a\b; ok is false for an unknown root.
func canonKey(p string) (string, bool) {
	p = strings.Trim(p, `\`)
	root, rest, _ := strings.Cut(p, `\`)
	full, ok := regRoots[strings.ToUpper(root)]
	if !ok {
		return "", false
	}
	if rest == "" {
		return full, true
	}
	return full + `\` + rest, true
}

func newRegistry() *registry { return &registry{keys: map[string]*regKey{}} }

// key returns the key at p (any root spelling), nil when absent.
func (r *registry) key(p string) *regKey {
	c, ok := canonKey(p)
	if !ok {
		return nil
	}
	return r.keys[strings.ToUpper(c)]
}

// ensure creates the key and its parents.
func (r *registry) ensure(p string) *regKey {
	c, ok := canonKey(p)
	if !ok {
		return nil
	}
	parts := strings.Split(c, `\`)
	var k *regKey
	for i := range parts {
		sub := strings.Join(parts[:i+1], `\`)
		u := strings.ToUpper(sub)
		if k = r.keys[u]; k == nil {
			k = &regKey{path: sub}
			r.keys[u] = k
		}
	}
	return k
}

func (r *registry) set(p, name, typ, data string) {
	k := r.ensure(p)
	if k == nil {
		return
	}
	for i := range k.values {
		if strings.EqualFold(k.values[i].name, name) {
			k.values[i].typ, k.values[i].data = typ, data
			return
		}
	}
	k.values = append(k.values, regValue{name: name, typ: typ, data: data})
}

func (r *registry) get(p, name string) (regValue, bool) {
	k := r.key(p)
	if k == nil {
		return regValue{}, false
	}
	for _, v := range k.values {
		if strings.EqualFold(v.name, name) {
			return v, true
		}
	}
	return regValue{}, false
}

func (r *registry) deleteValue(p, name string) bool {
	k := r.key(p)
	if k == nil {
		return false
	}
	for i, v := range k.values {
		if strings.EqualFold(v.name, name) {
			k.values = append(k.values[:i], k.values[i+1:]...)
			return true
		}
	}
	return false
}

// deleteKey removes the key and all its subkeys.
func (r *registry) deleteKey(p string) bool {
	c, ok := canonKey(p)
	if !ok {
		return false
	}
	u := strings.ToUpper(c)
	if r.keys[u] == nil {
		return false
	}
	for k := range r.keys {
		if k == u || strings.HasPrefix(k, u+`\`) {
			delete(r.keys, k)
		}
	}
	return true
}

// subkeys lists the direct subkeys' full paths, sorted case-insensitively.
func (r *registry) subkeys(k *regKey) []string {
	prefix := strings.ToUpper(k.path) + `\`
	var out []string
	for u, sk := range r.keys {
		if strings.HasPrefix(u, prefix) && !strings.Contains(u[len(prefix):], `\`) {
			out = append(out, sk.path)
		}
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToUpper(out[i]) < strings.ToUpper(out[j]) })
	return out
}

// regValueLine renders one value in reg.exe 3.0 layout (checks/testdata/samples/reg-query-regexe-v3*.txt);
// sep is Quirks.RegSeparator.
func regValueLine(v regValue, sep string) string {
	name := v.name
	if name == "" {
		name = "<NO NAME>" // checks/testdata/samples/reg-query-regexe-v3-noname.txt (secondary evidence)
	}
	return "    " + name + sep + v.typ + sep + regDataString(v) + "\r\n"
}

func regDataString(v regValue) string {
	switch v.typ {
	case "REG_DWORD":
		var n uint64
		if _, err := fmt.Sscan(v.data, &n); err != nil {
			return v.data
		}
		return fmt.Sprintf("0x%x", n)
	case "REG_MULTI_SZ":
		// reg.exe 3.0 shows the parts separated by \0 and ends with \0\0 [I].
		return strings.ReplaceAll(v.data, "\x00", `\0`) + `\0\0`
	default:
		return v.data
	}
}

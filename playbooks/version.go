package playbooks

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a Windows file version a.b.c.d, each part 0..65535 (VS_FIXEDFILEINFO holds
// two 32-bit words split into four 16-bit parts).
type Version [4]uint16

// ParseVersion parses exactly four dot-separated decimal parts, e.g. "6.0.3790.3959".
func ParseVersion(s string) (Version, error) {
	var v Version
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return v, fmt.Errorf("version %q: want four parts a.b.c.d", s)
	}
	for i, p := range parts {
		if p == "" || len(p) > 5 || strings.TrimLeft(p, "0123456789") != "" {
			return v, fmt.Errorf("version %q: part %d is not a number 0..65535", s, i+1)
		}
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return v, fmt.Errorf("version %q: part %d is not a number 0..65535", s, i+1)
		}
		v[i] = uint16(n)
	}
	return v, nil
}

// Compare returns -1, 0 or +1 as v is older than, equal to or newer than w.
func (v Version) Compare(w Version) int {
	for i := range v {
		switch {
		case v[i] < w[i]:
			return -1
		case v[i] > w[i]:
			return 1
		}
	}
	return 0
}

// Less reports whether v is older than w.
func (v Version) Less(w Version) bool { return v.Compare(w) < 0 }

// IsZero reports whether v is 0.0.0.0, the value of an unset version.
func (v Version) IsZero() bool { return v == Version{} }

// String formats v as a.b.c.d.
func (v Version) String() string {
	return fmt.Sprintf("%d.%d.%d.%d", v[0], v[1], v[2], v[3])
}

// MarshalText formats v as a.b.c.d (JSON strings, YAML scalars).
func (v Version) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText parses a.b.c.d.
func (v *Version) UnmarshalText(b []byte) error {
	p, err := ParseVersion(string(b))
	if err != nil {
		return err
	}
	*v = p
	return nil
}

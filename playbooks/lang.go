package playbooks

import "strings"

// languages maps Windows' three-letter language codes, as used in the SP2 installer file
// names (WindowsServer2003-KB914961-SP2-x86-LLL.exe, docs/facts.md §2.1), to the primary LCID of
// that language as printed in HKLM\SYSTEM\CurrentControlSet\Control\Nls\Language
// InstallLanguage (four hex digits). The codes are Windows' own (GetLocaleInfo
// LOCALE_SABBREVLANGNAME); which of them have an SP2 package is the catalogue's business.
var languages = map[string]string{
	"ARA": "0401", "CHT": "0404", "CSY": "0405", "DAN": "0406", "DEU": "0407",
	"ELL": "0408", "ENU": "0409", "FIN": "040B", "FRA": "040C", "HEB": "040D",
	"HUN": "040E", "ITA": "0410", "JPN": "0411", "KOR": "0412", "NLD": "0413",
	"NOR": "0414", "PLK": "0415", "PTB": "0416", "RUS": "0419", "SVE": "041D",
	"TRK": "041F", "CHS": "0804", "PTG": "0816", "ESN": "0C0A",
}

// lcidAliases are further LCIDs whose installer language is one of the above: Spanish
// traditional sort (040A) installs the ESN package, Chinese (Hong Kong) (0C04) the CHT one.
var lcidAliases = map[string]string{"040A": "ESN", "0C04": "CHT"}

// isLanguage reports whether code is a known three-letter language code (upper case).
func isLanguage(code string) bool {
	_, ok := languages[code]
	return ok
}

// LanguageForLCID returns the three-letter language code for an LCID in hex ("0409",
// "409", "0x0409", any case), or "" when it is unknown.
func LanguageForLCID(lcid string) string {
	s := strings.ToUpper(strings.TrimSpace(lcid))
	s = strings.TrimPrefix(s, "0X")
	if s == "" || len(s) > 8 {
		return ""
	}
	for len(s) < 4 {
		s = "0" + s
	}
	if len(s) > 4 {
		// Only the low word is the language ID; higher digits are the sort ID.
		s = s[len(s)-4:]
	}
	if code, ok := lcidAliases[s]; ok {
		return code
	}
	for code, id := range languages {
		if id == s {
			return code
		}
	}
	return ""
}

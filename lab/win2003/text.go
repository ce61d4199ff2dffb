package win2003

import (
	"strings"
	"unicode/utf16"

	"golang.org/x/text/encoding/charmap"
)

// locale holds what differs between an English and a Spanish host. Spanish texts are translations
// made for the lab: no verbatim Spanish Server 2003 capture was found, so all of them are unconfirmed.
// Property names of wmic and value names of reg stay English on every host (they are not localized).
type locale struct {
	ansiCP   int
	oemCP    int
	ansi     *charmap.Charmap
	oem      *charmap.Charmap
	msg      map[string]string
	scLabels [7]string // SERVICE_NAME TYPE STATE WIN32_EXIT_CODE SERVICE_EXIT_CODE CHECKPOINT WAIT_HINT
}

var locales = map[string]*locale{
	"0409": {
		ansiCP: 1252, oemCP: 437, ansi: charmap.Windows1252, oem: charmap.CodePage437,
		scLabels: [7]string{"SERVICE_NAME", "TYPE", "STATE", "WIN32_EXIT_CODE", "SERVICE_EXIT_CODE", "CHECKPOINT", "WAIT_HINT"},
		msg: map[string]string{
			// cmd.exe's text for an unknown command (exit code 9009).
			"notrecognized1": "'%s' is not recognized as an internal or external command,",
			"notrecognized2": "operable program or batch file.",
			"nofile":         "The system cannot find the file specified.",
			"nopath":         "The system cannot find the path specified.",
			"couldnotfind":   "Could Not Find %s",
			"regnotfound":    "Error:  The system was unable to find the specified registry key or value", // reg.exe 3.0, see progReg
			"regok":          "The operation completed successfully",                                      // no period in reg.exe 3.0 [I]
			"noinstances":    "No Instance(s) Available.",
			"wmicbanner":     "Please wait while WMIC is being installed.",
			// W3SVC 1009 as rendered in checks/testdata/samples/w3svc-1009-event-*.txt; the TechNet template in
			// docs/facts.md §3.2 lacks the space in "was '0x%3'", a glitch of that copy.
			"1009": "A process serving application pool '%1' terminated unexpectedly. The process id was '%2'. The process exit code was '0x%3'.",
			// W3SVC 1002 as the TechNet template in docs/facts.md §3.2 spells it. Unconfirmed: IIS 7's
			// WAS 5002 reads "process(es)" (learn.microsoft.com dd364088), and the same TechNet
			// copy has other spacing glitches ("aping", "was'0x%3'").
			"1002":            "Application pool '%1' is being automatically disabled due to a series of failures in the process (es) serving that application pool.",
			"w3svcdisplay":    "World Wide Web Publishing Service",
			"scheddisplay":    "Task Scheduler",
			"winrmdisplay":    "Windows Remote Management (WS-Management)",
			"iisadmindisplay": "IIS Admin Service",
			"httpssldisplay":  "HTTP SSL",
			"direxists":       "A subdirectory or file %s already exists.",
			"accessdenied":    "Access is denied.",
			"syntax":          "The syntax of the command is incorrect.",
			"echoon":          "ECHO is on.",
			"echooff":         "ECHO is off.",
			// Win32_NTLogEvent.Type, lower case as the lab prints it [I]
			"warning":     "warning",
			"error":       "error",
			"information": "information",
		},
	},
	"0C0A": {
		ansiCP: 1252, oemCP: 850, ansi: charmap.Windows1252, oem: charmap.CodePage850,
		// Unconfirmed: labels as later Spanish Windows prints them.
		scLabels: [7]string{"NOMBRE_SERVICIO", "TIPO", "ESTADO", "CÓD_SALIDA_WIN32", "CÓD_SALIDA_SERVICIO", "PUNTO_COMPROB.", "INDICACIÓN_INICIO"},
		msg: map[string]string{
			"notrecognized1":  "'%s' no se reconoce como un comando interno o externo,",
			"notrecognized2":  "programa o archivo por lotes ejecutable.",
			"nofile":          "El sistema no puede hallar el archivo especificado.",
			"nopath":          "El sistema no puede hallar la ruta especificada.",
			"couldnotfind":    "No se pudo encontrar %s",
			"regnotfound":     "Error: El sistema no pudo hallar la clave o el valor del Registro especificado.",
			"regok":           "La operación se completó correctamente",
			"noinstances":     "No hay instancias disponibles.",
			"wmicbanner":      "Espere mientras se instala WMIC.",
			"1009":            "Un proceso que atiende al grupo de aplicaciones '%1' terminó inesperadamente. El Id. de proceso era '%2'. El código de salida del proceso era '0x%3'.",
			"1002":            "El grupo de aplicaciones '%1' se está deshabilitando automáticamente debido a una serie de errores en los procesos que atienden a dicho grupo de aplicaciones.",
			"w3svcdisplay":    "Servicio de publicación World Wide Web",
			"scheddisplay":    "Programador de tareas",
			"winrmdisplay":    "Administración remota de Windows (WS-Management)",
			"iisadmindisplay": "Servicio IIS Admin",
			"httpssldisplay":  "SSL HTTP",
			"direxists":       "Ya existe el subdirectorio o el archivo %s.",
			"accessdenied":    "Acceso denegado.",
			"syntax":          "La sintaxis del comando no es correcta.",
			"echoon":          "ECHO está activado.",
			"echooff":         "ECHO está desactivado.",
			// Win32_NTLogEvent.Type is localized text [I]
			"warning":     "advertencia",
			"error":       "error",
			"information": "información",
		},
	},
}

func (h *Host) loc() *locale { return locales[h.spec.Language] }

func (l *locale) text(key string) string {
	if s, ok := l.msg[key]; ok {
		return s
	}
	return locales["0409"].msg[key]
}

// encodeCP encodes s in a single-byte code page; characters it lacks become '?'.
func encodeCP(cm *charmap.Charmap, s string) []byte {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r < 0x80 {
			out = append(out, byte(r))
			continue
		}
		if b, ok := cm.EncodeRune(r); ok {
			out = append(out, b)
		} else {
			out = append(out, '?')
		}
	}
	return out
}

// decodeCP decodes single-byte text.
func decodeCP(cm *charmap.Charmap, b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		if c < 0x80 {
			sb.WriteByte(c)
		} else {
			sb.WriteRune(cm.DecodeByte(c))
		}
	}
	return sb.String()
}

// utf16le encodes s as UTF-16LE without a BOM.
func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	out := make([]byte, 2*len(u))
	for i, c := range u {
		out[2*i] = byte(c)
		out[2*i+1] = byte(c >> 8)
	}
	return out
}

// expandMessage fills %1..%9 of an event message template.
func expandMessage(tmpl string, args []string) string {
	var sb strings.Builder
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] == '%' && i+1 < len(tmpl) && tmpl[i+1] >= '1' && tmpl[i+1] <= '9' {
			n := int(tmpl[i+1] - '1')
			if n < len(args) {
				sb.WriteString(args[n])
			}
			i++
			continue
		}
		sb.WriteByte(tmpl[i])
	}
	return sb.String()
}

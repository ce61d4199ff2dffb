// Package checks is the read-only half of iisremedy: the probe (one script of named
// sections run as one remote command, or as a .cmd file an admin runs by hand), the parsers
// of what Windows Server 2003 prints (reg.exe, wmic, sc, in ANSI and UTF-16LE, localized),
// the Facts they establish and Diagnose, which turns Facts and a playbook into a verdict
// with evidence.
package checks

// Package remote is the WinRM client side of iisremedy: one WS-Management shell per host
// session, many commands in it, stdin streamed in envelope-sized chunks, and errors
// classified by how the user should react.
//
// It builds requests with github.com/masterzen/winrm, but posts them through its own
// transports: HTTP Basic (HTTPS, or plain HTTP only when explicitly allowed), and NTLM with
// message encryption on github.com/bodgit/ntlmssp, authenticated once per TCP connection,
// with HTTP status codes checked and no fallback to unencrypted messages (docs/winrm-protocol.md
// §1.7-1.8 lists the library transport's defects this avoids). It reads replies with its own
// streaming decoder.
//
// Every byte from a host is bounded in size, depth and time, so that one broken or hostile
// host costs that host and not a run over hundreds: a reply's head (64 KiB, 100 header
// lines, 16 KiB a line, 1 KiB the status line), its body (four times the envelope size asked
// for, at least 1 MiB), its XML (32 levels, an element per 16 bytes), a command's output
// (DefaultMaxOutput), each request (OperationTimeout plus ResponseGrace, over the whole
// exchange), and the values of a host quoted in an error (200 bytes). A bound broken is a
// protocol error wrapping
// ErrReplyLimit or ErrOutputLimit, never retried; an oversized or endless body is not read
// to its end, its connection is dropped. Receive replies that come back at once with no
// output are spaced by a short growing backoff; a command that never ends is ended by the
// caller's ctx.
package remote

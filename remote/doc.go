// Package remote is the WinRM client side of iisremedy: one WS-Management shell per host
// session, many commands in it, stdin streamed in envelope-sized chunks, and errors
// classified by how the user should react.
//
// It builds requests and parses replies with github.com/masterzen/winrm, but posts them
// through its own transports: HTTP Basic (HTTPS, or plain HTTP only when explicitly
// allowed), and NTLM with message encryption on github.com/bodgit/ntlmssp, authenticated
// once per TCP connection, with HTTP status codes checked and no fallback to unencrypted
// messages (docs/winrm-protocol.md §1.7-1.8 lists the library transport's defects this avoids).
package remote

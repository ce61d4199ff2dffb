package wsman

import (
	"bytes"
	"context"
	"testing"

	"github.com/masterzen/winrm"
)

// BenchmarkCommand runs one command per iteration through masterzen/winrm and reports the HTTP
// requests per command and the wire (body) bytes per command.
func BenchmarkCommandBasic(b *testing.B) {
	benchCommand(b, basicServer(), nil, 0)
}

// BenchmarkCommandStdin64KiB sends 64 KiB of stdin through findstr per command; wireB/stdinB is
// request body bytes per stdin byte (base64 and SOAP overhead).
func BenchmarkCommandStdin64KiB(b *testing.B) {
	benchCommand(b, basicServer(), nil, 64<<10)
}

// BenchmarkCommandNTLMEncrypted uses masterzen's Encryption transport: a fresh NTLM handshake per message.
func BenchmarkCommandNTLMEncrypted(b *testing.B) {
	benchCommand(b, ntlmServer(), encryptionParams(b), 0)
}

func benchCommand(b *testing.B, srv *Server, params *winrm.Parameters, stdin int) {
	srv.Logf = func(string, ...any) {}
	_, host, port := start(b, srv)
	c := mzClient(b, host, port, "Administrator", "Passw0rd!", params)
	input := bytes.Repeat([]byte("0123456789abcde\n"), stdin/16)
	cmd := "echo hello"
	if stdin > 0 {
		cmd = `findstr "^"`
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var out, errb bytes.Buffer
		if _, err := c.RunWithContextWithInput(context.Background(), cmd, &out, &errb, bytes.NewReader(input)); err != nil {
			b.Fatal(err)
		}
		if stdin > 0 && out.Len() != len(input) {
			b.Fatalf("stdout %d bytes", out.Len())
		}
	}
	b.StopTimer()
	st := srv.Stats()
	b.ReportMetric(float64(st.Requests)/float64(b.N), "req/cmd")
	b.ReportMetric(float64(st.BytesIn+st.BytesOut)/float64(b.N), "wireB/cmd")
	if stdin > 0 {
		b.ReportMetric(float64(st.BytesIn)/float64(b.N*len(input)), "wireB/stdinB")
	}
}

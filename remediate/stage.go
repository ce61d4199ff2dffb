package remediate

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/iisremedy/iisremedy/remote"
)

// pushLine is the raw installer bytes in one base64 line of a push: a multiple of 3, so that a
// line decodes on its own and a resumed transfer starts on a line (48 KiB gives 64 KiB of text).
const pushLine = 48 << 10

// pullChunk is the size of the chunk files a host without PowerShell downloads.
const pullChunk = 8 << 20

// stageAttempts bounds how often a transfer whose connection dropped is resumed in one run.
const stageAttempts = 5

// stdinReader is a command's stdin that is closed after the command.
type stdinReader interface {
	io.Reader
	Close() error
}

var errStageTimeout = errors.New("staging timed out")

// stage puts the host's installer in its work folder as SHA.exe, proven by a hash computed on
// the host. A file already there under that name was proven by an earlier run and is not sent
// again; a partial file is resumed where it ends.
func (hr *hostRun) stage(ctx context.Context) error {
	inst := hr.ph.Installer
	local, ok := hr.r.Installers.For(inst.Arch, inst.Language)
	if !ok || local.SHA256 != inst.SHA256 {
		return fail(StepStage, "the installer the plan names (%s, sha256 %s) is not in the installer directory any more", inst.File, inst.SHA256)
	}
	hr.installer = hr.work + `\` + inst.SHA256 + ".exe"
	if _, err := hr.runOK(ctx, mkdirCmd(hr.work)); err != nil {
		return err
	}
	files, err := hr.list(ctx)
	if err != nil {
		return err
	}
	if size, ok := files[strings.ToLower(inst.SHA256+".exe")]; ok && size == inst.Size {
		hr.notes = append(hr.notes, fmt.Sprintf("The installer was already on the host, proven, as %s.", hr.installer))
		return nil
	}
	if err := hr.checkDisk(inst.Size, files); err != nil {
		return err
	}
	// A drain stops a transfer where it is (a rerun resumes it); the stage timeout runs on the
	// engine's clock.
	sctx, cancel := withTimeout(ctx, hr.e.clock(), hr.r.Plan.Options.Timing.Stage.D(), errStageTimeout)
	defer cancel()
	sctx, stopDrain := cancelOnDrain(sctx, hr.r.Drain)
	defer stopDrain()
	switch inst.Method {
	case StagePull:
		err = hr.pull(sctx, local, files)
	case StageShare:
		err = hr.copyFromShare(sctx, local)
	default:
		err = hr.push(sctx, local, files)
	}
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return err
		case drained(hr.r.Drain):
			return errDrained{before: StepStage}
		case errors.Is(context.Cause(sctx), errStageTimeout):
			return fail(StepStage, "the transfer did not finish within %s: %v", hr.r.Plan.Options.Timing.Stage.D(), err)
		}
		return err
	}
	return hr.prove(ctx, local)
}

// cancelOnDrain returns a context that also ends when drain closes.
func cancelOnDrain(ctx context.Context, drain <-chan struct{}) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	stop := make(chan struct{})
	go func() {
		select {
		case <-drain:
			cancel()
		case <-stop:
		}
	}()
	return ctx, func() { close(stop); cancel() }
}

func (hr *hostRun) list(ctx context.Context) (map[string]int64, error) {
	res, err := hr.runOK(ctx, listCmd(hr.work))
	if err != nil {
		return nil, err
	}
	return parseList(res.Stdout), nil
}

func (hr *hostRun) part() string { return hr.work + `\` + hr.ph.Installer.SHA256 + ".part" }

func (hr *hostRun) powershell() bool { return hr.facts.PowerShellVersion != "" }

// checkDisk refuses a transfer the system drive has no room for: what is still to send, plus
// what the installer itself needs.
func (hr *hostRun) checkDisk(size int64, files map[string]int64) error {
	if hr.facts.Disk == nil {
		return nil
	}
	sha := strings.ToLower(hr.ph.Installer.SHA256)
	have := files[sha+".part"] + files[sha+".b64"]
	need := stageDiskNeed(size, hr.ph.Installer.Method, hr.powershell()) - have + hr.minFree()
	if free := int64(hr.facts.Disk.FreeBytes); free < need {
		return fail(StepStage, "%s has %d MB free; the installer needs %d MB there (with SP2's own %d MB)",
			hr.facts.SystemDrive, free>>20, need>>20, hr.minFree()>>20)
	}
	return nil
}

func (hr *hostRun) minFree() int64 {
	pb := playbookNamed(embeddedOr(hr.e.Playbooks), hr.ph.Playbook)
	return pb.Steps.MinFreeDiskMB << 20
}

// push streams the installer through a command's stdin as base64 lines: a PowerShell decoder
// writes the binary where the host has PowerShell, else findstr appends the text for certutil
// to decode. After a dropped connection the host's partial file says where to continue.
func (hr *hostRun) push(ctx context.Context, local Installer, files map[string]int64) error {
	sha := hr.ph.Installer.SHA256
	b64 := hr.work + `\` + sha + ".b64"
	for attempt := 1; ; attempt++ {
		var offset int64
		var cmd string
		if hr.powershell() {
			// Only whole lines are ever written: a partial file ends on a line.
			offset = files[sha+".part"] / pushLine * pushLine
			cmd = psDecodeCmd(hr.part(), offset)
		} else {
			lineLen := int64(base64.StdEncoding.EncodedLen(pushLine) + 2)
			have := files[sha+".b64"]
			if have%lineLen != 0 {
				// findstr writes whole lines; anything else is not ours to continue.
				if _, err := hr.runOK(ctx, delCmd(b64)); err != nil {
					return err
				}
				have = 0
			}
			offset = have / lineLen * pushLine
			cmd = appendFileCmd(b64)
		}
		if offset > 0 {
			hr.e.emit(hr.h.Entry, StepStage, StepStarted, fmt.Sprintf("resuming at byte %d of %d", offset, local.Size))
			hr.notes = append(hr.notes, fmt.Sprintf("The transfer resumed at byte %d of %d.", offset, local.Size))
		}
		// Appending is not safe to repeat: a failure resumes from what the host holds.
		res, err := hr.runOnce(ctx, cmd, func() stdinReader { return hr.openLines(ctx, local.Path, offset) })
		if err == nil && res.ExitCode == 0 {
			break
		}
		if err == nil {
			return fail(StepStage, "writing the installer on the host failed (exit code %d): %s", res.ExitCode, outputTail(res, 300))
		}
		if !resumable(err) || attempt >= stageAttempts || ctx.Err() != nil {
			return err
		}
		if files, err = hr.list(ctx); err != nil {
			return err
		}
	}
	if hr.powershell() {
		return nil
	}
	// certutil holds the whole file in memory while it decodes: inside the WinRM shell a real
	// installer would break MaxMemoryPerShellMB (150), so a SYSTEM task decodes it.
	code, err := hr.runTask(ctx, "decode", []string{certutilDecodeCmd(b64, hr.part())}, hr.r.Plan.Options.Timing.Stage.D())
	if err != nil {
		return err
	}
	if code != 0 {
		return fail(StepStage, "certutil -decode of the staged text failed (exit code %d)", code)
	}
	_, err = hr.runOK(ctx, delCmd(b64))
	return err
}

// resumable reports a transfer that failed on the connection, not on the host: it can go on
// from the host's partial file on a new connection.
func resumable(err error) bool {
	var re *remote.Error
	return worthRetrying(err) || errors.As(err, &re) && (re.Class == remote.ClassUnreachable || re.Class == remote.ClassTimeout)
}

// openLines reads the local installer from offset as base64 lines, paced by the run's rate
// limit. Only one line is held in memory.
func (hr *hostRun) openLines(ctx context.Context, path string, offset int64) stdinReader {
	f, err := os.Open(path)
	if err != nil {
		return errReader{err}
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return errReader{err}
	}
	enc := &lineEncoder{src: bufio.NewReaderSize(f, pushLine), raw: make([]byte, pushLine), progress: hr.progress(offset)}
	if l := hr.e.StageLimit; l != nil {
		// base64 text: 3 installer bytes in 4
		enc.pace = func(n int) error { return l.wait(ctx, n*3/4) }
	}
	return readCloser{Reader: enc, c: f}
}

type readCloser struct {
	io.Reader
	c io.Closer
}

func (r readCloser) Close() error { return r.c.Close() }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
func (e errReader) Close() error             { return nil }

// lineEncoder turns a byte stream into base64 lines of pushLine raw bytes, CRLF-terminated.
// Text is paced before it is handed out, and a line's raw bytes count as sent once the last of
// its text has gone: the progress never runs ahead of the rate limit.
type lineEncoder struct {
	src      io.Reader
	raw      []byte
	line     []byte // encoded text not read yet
	lineRaw  int64  // the raw bytes of that line
	err      error
	pace     func(n int) error // waits until n bytes of text may go (nil = no limit)
	progress func(n int64)     // hears the raw bytes sent (nil = nobody)
}

func (l *lineEncoder) Read(p []byte) (int, error) {
	for len(l.line) == 0 {
		if l.err != nil {
			return 0, l.err
		}
		n, err := io.ReadFull(l.src, l.raw)
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		l.err = err
		if n > 0 {
			enc := make([]byte, base64.StdEncoding.EncodedLen(n)+2)
			base64.StdEncoding.Encode(enc, l.raw[:n])
			copy(enc[len(enc)-2:], "\r\n")
			l.line, l.lineRaw = enc, int64(n)
		}
	}
	n := min(len(p), len(l.line))
	if l.pace != nil {
		if err := l.pace(n); err != nil {
			return 0, err
		}
	}
	copy(p, l.line[:n])
	l.line = l.line[n:]
	if len(l.line) == 0 && l.progress != nil {
		l.progress(l.lineRaw)
	}
	return n, nil
}

// progress returns the function that adds bytes sent to the host's transfer, from offset.
func (hr *hostRun) progress(offset int64) func(int64) {
	if hr.e.Transfer == nil {
		return nil
	}
	var sent atomic.Int64
	sent.Store(offset)
	total := hr.ph.Installer.Size
	hr.e.Transfer(hr.h.Entry, offset, total)
	return func(n int64) { hr.e.Transfer(hr.h.Entry, sent.Add(n), total) }
}

// pull has the host download the installer from the runner's pull server: PowerShell with a
// ranged request where it exists, else the VBScript of ranged chunks, assembled with copy /b.
// A download cut in the middle leaves what arrived (the part file, or the chunks saved whole):
// it is run again while it gets further, and the host asks only for the rest.
func (hr *hostRun) pull(ctx context.Context, local Installer, files map[string]int64) error {
	if hr.r.Pull == nil {
		return fail(StepStage, "no pull server: the run was started without --serve-addr")
	}
	sha := hr.ph.Installer.SHA256
	have := pulled(files, sha, hr.powershell())
	// A download whose reply was lost may have ended: asked again, the pull server would
	// refuse a range past the end. The proof judges what the host holds.
	for attempt := 1; have < local.Size; attempt++ {
		if have > 0 {
			hr.e.emit(hr.h.Entry, StepStage, StepStarted, fmt.Sprintf("resuming at byte %d of %d", have, local.Size))
			hr.notes = append(hr.notes, fmt.Sprintf("The transfer resumed at byte %d of %d.", have, local.Size))
		}
		res, err := hr.pullOnce(ctx, local, have)
		if err == nil && res.ExitCode == 0 {
			break
		}
		if err != nil && (!resumable(err) || attempt >= stageAttempts || ctx.Err() != nil) {
			return err
		}
		files, lerr := hr.list(ctx)
		if lerr != nil {
			return lerr
		}
		now := pulled(files, sha, hr.powershell())
		if err == nil && (now <= have || attempt >= stageAttempts || ctx.Err() != nil) {
			return fail(StepStage, "the host's download from this machine failed (exit code %d): %s", res.ExitCode, outputTail(res, 300))
		}
		have = now
	}
	if hr.powershell() {
		return nil
	}
	// SHA.p0*, not SHA.p*: the part file would match too.
	chunks := fmt.Sprintf(`%s\%s.p0*`, hr.work, sha)
	if _, err := hr.runOK(ctx, fmt.Sprintf(`copy /b /y "%s" "%s"`, chunks, hr.part())); err != nil {
		return err
	}
	_, err := hr.runOK(ctx, fmt.Sprintf(`del /q "%s\%s.p0*"`, hr.work, sha))
	return err
}

// pullOnce runs the host's download once, under a token of its own that is revoked when it
// ends; offset is where the host's partial download ends, for the progress.
func (hr *hostRun) pullOnce(ctx context.Context, local Installer, offset int64) (remote.Result, error) {
	url, revoke := hr.r.Pull.Grant(hr.h.Entry, hr.ph.Installer.File, local.Path, hr.progress(offset))
	defer revoke()
	hr.secret = Token(url)
	defer func() { hr.secret = "" }()
	if hr.powershell() {
		return hr.run(ctx, psPullCmd(url, hr.part()))
	}
	script := hr.work + `\pull.vbs`
	if _, err := hr.runInput(ctx, writeFileCmd(script), func() stdinReader { return textReader(pullScript) }); err != nil {
		return remote.Result{}, err
	}
	return hr.run(ctx, cscriptCmd(script, url, hr.work+`\`+hr.ph.Installer.SHA256, strconv.FormatInt(local.Size, 10), strconv.Itoa(pullChunk)))
}

// pulled is what a host holds of a download, from its work folder's listing: the part file
// PowerShell appends to, or the chunks the VBScript saved (only whole ones are saved).
func pulled(files map[string]int64, sha string, powershell bool) int64 {
	prefix := strings.ToLower(sha)
	if powershell {
		return files[prefix+".part"]
	}
	var n int64
	for name, size := range files {
		if strings.HasPrefix(name, prefix+".p0") {
			n += size
		}
	}
	return n
}

// shareCopy is the batch line that copies an installer from the share.
func shareCopy(share, file, to string) string {
	return fmt.Sprintf(`copy /y "%s\%s" "%s"`, strings.TrimRight(share, `\`), file, to)
}

// copyFromShare copies the installer from the UNC share with a one-shot task as SYSTEM: the
// host's machine account reads the share, so no credential is on any command line and there is
// no double hop (docs/facts.md §6.3).
func (hr *hostRun) copyFromShare(ctx context.Context, local Installer) error {
	share := hr.r.Plan.Options.Share
	if share == "" {
		return fail(StepStage, "stage=share needs --share \\\\server\\share\\folder")
	}
	log := hr.work + `\share.log`
	code, err := hr.runTask(ctx, "share", []string{shareCopy(share, hr.ph.Installer.File, hr.part()) + fmt.Sprintf(` > "%s" 2>&1`, log)},
		hr.r.Plan.Options.Timing.Stage.D())
	if err != nil {
		return err
	}
	if code != 0 {
		res, _ := hr.run(ctx, typeCmd(log))
		return fail(StepStage, "copying %s from %s failed (exit code %d): %s", hr.ph.Installer.File, share, code, outputTail(res, 300))
	}
	return nil
}

// prove compares the hash the host computes of the staged file with the local one, by the best
// means the host has; a mismatch deletes the file. The evidence names the means.
func (hr *hostRun) prove(ctx context.Context, local Installer) error {
	part := hr.part()
	var got, want, how string
	if hr.powershell() {
		res, err := hr.runOK(ctx, psHashCmd(part))
		if err != nil {
			return err
		}
		got, want, how = parseHash(res.Stdout), local.SHA256, "SHA-256 computed on the host with PowerShell"
	} else {
		res, err := hr.run(ctx, certutilHashCmd(part))
		if err != nil {
			return err
		}
		switch h := parseHash(res.Stdout); {
		case res.ExitCode == 0 && len(h) == 64:
			got, want, how = h, local.SHA256, "SHA-256 computed on the host with certutil -hashfile"
		case res.ExitCode == 0 && len(h) == 40:
			got, want, how = h, local.SHA1, "SHA-1 computed on the host with certutil -hashfile (its only algorithm on Server 2003)"
		default:
			res, err := hr.runOK(ctx, datafileCmd(part))
			if err != nil {
				return err
			}
			v := wmicValues(res.Stdout)
			got, want = v["FileSize"], strconv.FormatInt(local.Size, 10)
			how = fmt.Sprintf("size only, from wmic datafile (no PowerShell, no certutil -hashfile; version resource %q): a weaker check", v["Version"])
		}
	}
	if got != want {
		if _, err := hr.run(ctx, delCmd(part)); err != nil {
			return err
		}
		return fail(StepStage, "the staged file differs from the installer: %s is %q on the host, %s here; it was deleted", how, got, want)
	}
	if _, err := hr.runOK(ctx, moveCmd(part, hr.installer)); err != nil {
		return err
	}
	hr.notes = append(hr.notes, fmt.Sprintf("Staged %s by %s as %s; proof: %s.", hr.ph.Installer.File, hr.ph.Installer.Method, hr.installer, how))
	return nil
}

// textReader is stdin from a string, as CRLF lines.
func textReader(s string) stdinReader {
	return readCloser{Reader: strings.NewReader(strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")), c: io.NopCloser(nil)}
}

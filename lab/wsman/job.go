package wsman

import (
	"context"
	"errors"
	"sync"
)

// A WinRS shell runs its commands in a job object: MaxProcessesPerShell and MaxMemoryPerShellMB
// count the shell's processes and their children (docs/facts.md §6.3, winrm-quotas). The
// service does not kill a process that reaches a quota; the process's next allocation or
// process creation fails (ansible/ansible#39327: a command past MaxMemoryPerShellMB got "The
// paging file is too small for this operation to complete." and exit code 1;
// xebialabs/overthere#64: a JVM could not allocate its heap). A Host learns the job of the shell
// a command runs in from the command's context (JobOf) and accounts what its programs use.

// Errors of Job.Start and Job.Commit.
var (
	// ErrProcessQuota: the shell already runs MaxProcessesPerShell processes.
	ErrProcessQuota = errors.New("wsman: MaxProcessesPerShell reached")
	// ErrMemoryQuota: the shell's processes would commit more than MaxMemoryPerShellMB.
	ErrMemoryQuota = errors.New("wsman: MaxMemoryPerShellMB reached")
)

// Job accounts the processes and memory of one shell. A nil *Job (a command run outside any
// shell) accounts nothing and never fails.
type Job struct {
	user               string
	maxProcs, maxMemMB int

	mu           sync.Mutex
	procs, memMB int
}

type jobKey struct{}

// JobOf returns the job of the shell whose command ctx belongs to, or nil.
func JobOf(ctx context.Context) *Job {
	j, _ := ctx.Value(jobKey{}).(*Job)
	return j
}

// User is the user the shell belongs to, as authenticated ("" for a nil Job).
func (j *Job) User() string {
	if j == nil {
		return ""
	}
	return j.user
}

// Start accounts a process that commits memMB as it starts; end accounts its exit. It fails,
// accounting nothing, when the process would pass a quota.
func (j *Job) Start(memMB int) (end func(), err error) {
	if j == nil {
		return func() {}, nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.procs >= j.maxProcs {
		return nil, ErrProcessQuota
	}
	if j.memMB+memMB > j.maxMemMB {
		return nil, ErrMemoryQuota
	}
	j.procs++
	j.memMB += memMB
	var once sync.Once
	return func() {
		once.Do(func() {
			j.mu.Lock()
			j.procs--
			j.memMB -= memMB
			j.mu.Unlock()
		})
	}, nil
}

// Commit accounts mb more memory for a running process; release gives it back. It fails,
// accounting nothing, past MaxMemoryPerShellMB.
func (j *Job) Commit(mb int) (release func(), err error) {
	if j == nil {
		return func() {}, nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.memMB+mb > j.maxMemMB {
		return nil, ErrMemoryQuota
	}
	j.memMB += mb
	var once sync.Once
	return func() {
		once.Do(func() {
			j.mu.Lock()
			j.memMB -= mb
			j.mu.Unlock()
		})
	}, nil
}

// Usage reports the processes and the memory (MB) the shell's commands hold now.
func (j *Job) Usage() (procs, memMB int) {
	if j == nil {
		return 0, 0
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.procs, j.memMB
}

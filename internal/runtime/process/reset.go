package process

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/skiff-sh/skiff/internal/runtime/shim"
)

// Reset is `skiff reset`: it SIGKILLs every shim and container started under
// rootDir, removes their cgroups and log files, and deletes rootDir. It works
// from the files alone, so no Runtime needs to be open (or able to open).
func Reset(rootDir string) error {
	entries, err := os.ReadDir(filepath.Join(rootDir, shim.ContainersDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reset %s: %w", rootDir, err)
	}
	type leftover struct {
		procs []shim.ProcRef
		rec   shim.ContainerRecord
	}
	var all []leftover
	// Shims first, so none records an exit or removes files while the
	// state is being deleted; then the containers.
	for _, e := range entries {
		dir := filepath.Join(rootDir, shim.ContainersDir, e.Name())
		var l leftover
		var shimProc shim.ProcRef
		var started shim.StartedRecord
		if ok, _ := shim.ReadOptionalJSON(filepath.Join(dir, shim.ShimFile), &shimProc); ok && shimProc.Alive() {
			_ = syscall.Kill(shimProc.PID, syscall.SIGKILL)
			l.procs = append(l.procs, shimProc)
		}
		if ok, _ := shim.ReadOptionalJSON(filepath.Join(dir, shim.StartedFile), &started); ok && started.Alive() {
			_ = syscall.Kill(-started.PID, syscall.SIGKILL)
			l.procs = append(l.procs, started.ProcRef)
		}
		_ = shim.ReadJSON(filepath.Join(dir, shim.ContainerFile), &l.rec) // a half-created container has no processes
		all = append(all, l)
	}
	deadline := time.Now().Add(shim.CleanupTimeout)
	var errs []error
	for _, l := range all {
		if cg := l.rec.Cgroup; cg != nil {
			errs = append(errs, cg.Kill(deadline))
		}
		for _, p := range l.procs {
			errs = append(errs, waitGone(p, deadline))
		}
		if cg := l.rec.Cgroup; cg != nil {
			errs = append(errs, cg.Remove(deadline))
			for _, d := range cg.UniqueDirs() {
				// The sandbox's cgroup; it stays while other containers of
				// the sandbox still have theirs.
				_ = syscall.Rmdir(filepath.Dir(d))
			}
		}
		if l.rec.LogPath != "" {
			if err := os.Remove(l.rec.LogPath); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	// Sandbox cgroups: found by name, as no Runtime says which hierarchy is
	// in use; the ones that do not exist are skipped.
	sandboxes, _ := os.ReadDir(filepath.Join(rootDir, shim.SandboxesDir))
	for _, sb := range sandboxes {
		for _, d := range sandboxCgroupCandidates(sb.Name()) {
			errs = append(errs, shim.RmdirRetry(d, deadline))
		}
	}
	errs = append(errs, os.RemoveAll(rootDir))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("reset %s: %w", rootDir, err)
	}
	return nil
}

// waitGone polls until p has exited.
func waitGone(p shim.ProcRef, deadline time.Time) error {
	for p.Alive() {
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d survived SIGKILL", p.PID)
		}
		time.Sleep(pollInterval)
	}
	return nil
}

// sandboxCgroupCandidates are the directories a sandbox's cgroup has under
// either cgroup version.
func sandboxCgroupCandidates(sandboxID string) []string {
	dirs := []string{filepath.Join(shim.CgroupRoot, shim.CgroupParent, sandboxID)}
	for _, c := range shim.V1Controllers {
		dirs = append(dirs, filepath.Join(shim.CgroupRoot, c, shim.CgroupParent, sandboxID))
	}
	return dirs
}

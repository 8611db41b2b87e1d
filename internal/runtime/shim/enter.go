package shim

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// enterAndExec turns the calling process (shim init or shim exec) into a
// process of the container in dir and runs argv (nil: the container's own
// command). With nsPID == 0 it sets up the container's bind mounts in the
// private mount namespace it was started in; otherwise it joins the mount
// namespace of process nsPID. It returns only on failure.
func enterAndExec(dir string, nsPID int, argv []string) error {
	// fd 3 carries failures to the shim or runtime; execve must close it so
	// they see EOF on success.
	syscall.CloseOnExec(3)
	rec, err := readContainerRecord(dir)
	if err != nil {
		return err
	}
	p := rec.Process
	if argv == nil {
		argv = p.Args
	}
	if useMountNamespace(rec) {
		if nsPID > 0 {
			err = joinMountNamespace(nsPID)
		} else {
			err = bindMounts(p.Mounts)
		}
		if err != nil {
			return err
		}
	}
	path, err := lookPath(argv[0], EnvValue(p.Env, "PATH"))
	if err != nil {
		return err
	}
	if err := os.Chdir(p.Cwd); err != nil {
		return fmt.Errorf("change to working directory: %w", err)
	}
	// Joined last, just before execve, so the shim binary's own start-up
	// memory is not charged to a small container limit.
	if rec.Cgroup != nil && os.Geteuid() == 0 {
		if err := rec.Cgroup.join(os.Getpid()); err != nil {
			return err
		}
	}
	if err := setUser(p.User); err != nil {
		return err
	}
	if err := syscall.Exec(path, argv, p.Env); err != nil {
		return fmt.Errorf("exec %q: %w", argv[0], err)
	}
	return nil
}

// joinMountNamespace moves this goroutine's thread into process pid's mount
// namespace. The thread stays locked (and is discarded when the process
// execs) because its namespace now differs from the others'. setns refuses
// a thread that shares its filesystem context with other threads, which
// every Go thread does until unshare(CLONE_FS).
func joinMountNamespace(pid int) error {
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare filesystem context: %w", err)
	}
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/mnt", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open container mount namespace: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("join container mount namespace: %w", err)
	}
	return nil
}

// bindMounts makes each host path visible at its container path. Pods share
// the host's filesystem on this runtime, so a missing container path is
// created on the host (empty, as a mount point).
func bindMounts(mounts []MountSpec) error {
	// Parents before children, so a mount inside another mount is not hidden.
	sorted := slices.Clone(mounts)
	slices.SortStableFunc(sorted, func(a, b MountSpec) int {
		return strings.Count(filepath.Clean(a.Destination), "/") - strings.Count(filepath.Clean(b.Destination), "/")
	})
	for _, m := range sorted {
		if err := bindMount(m); err != nil {
			return fmt.Errorf("mount %s at %s: %w", m.Source, m.Destination, err)
		}
	}
	return nil
}

func bindMount(m MountSpec) error {
	st, err := os.Stat(m.Source)
	if err != nil {
		return err
	}
	if st.IsDir() {
		err = os.MkdirAll(m.Destination, 0o755)
	} else if err = os.MkdirAll(filepath.Dir(m.Destination), 0o755); err == nil {
		var f *os.File
		if f, err = os.OpenFile(m.Destination, os.O_CREATE|os.O_RDONLY, 0o644); err == nil {
			f.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("create mount point: %w", err)
	}
	if err := unix.Mount(m.Source, m.Destination, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	if m.ReadOnly {
		// A bind mount takes read-only only on a remount.
		if err := unix.Mount("", m.Destination, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("make read-only: %w", err)
		}
	}
	return nil
}

// lookPath resolves name against the container's PATH rather than the
// shim's, as execvp in the container would.
func lookPath(name, path string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}

// setUser switches to the container's user. Without root only the agent's
// own identity is possible.
func setUser(u *UserSpec) error {
	if u == nil {
		return nil
	}
	if err := checkUser(u); err != nil || os.Geteuid() != 0 {
		return err
	}
	groups := make([]int, len(u.Groups))
	for i, g := range u.Groups {
		groups[i] = int(g)
	}
	// Groups and gid first: after setuid there is no permission left to
	// change them.
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("set supplementary groups: %w", err)
	}
	if err := syscall.Setgid(int(u.GID)); err != nil {
		return fmt.Errorf("set gid %d: %w", u.GID, err)
	}
	if err := syscall.Setuid(int(u.UID)); err != nil {
		return fmt.Errorf("set uid %d: %w", u.UID, err)
	}
	return nil
}

// checkUser refuses a user the shim cannot become: without root, only the
// agent's own identity is possible.
func checkUser(u *UserSpec) error {
	if os.Geteuid() != 0 && (int(u.UID) != os.Getuid() || int(u.GID) != os.Getgid()) {
		return fmt.Errorf("running as uid %d gid %d needs the agent to run as root", u.UID, u.GID)
	}
	return nil
}

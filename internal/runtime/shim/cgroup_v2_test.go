package shim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCgroupV2OnAFakeTree drives the v2 code paths (this project's CI
// machines mount v1) over a directory laid out as a cgroup2 mount: the
// layout is detected as v2 and enables its controllers, a container's
// limits land in memory.max, cpu.max and cpu.weight, usage and OOM kills are
// read from v2's files, and removal deletes the directory.
func TestCgroupV2OnAFakeTree(t *testing.T) {
	root := t.TempDir()
	write := func(path, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func(path string) string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// What the kernel shows in every v2 directory; the skiff subtree and
	// the sandbox directory get theirs as the layout is made.
	write(filepath.Join(root, "cgroup.controllers"), "cpuset cpu io memory pids\n")
	write(filepath.Join(root, CgroupParent, "cgroup.controllers"), "cpu memory\n")
	write(filepath.Join(root, CgroupParent, "sb1", "cgroup.controllers"), "cpu memory\n")

	l, err := DetectCgroups(root)
	if err != nil {
		t.Fatal(err)
	}
	// A file, unlike cgroupfs, keeps only the last write: cpu, after memory.
	if got := read(filepath.Join(root, "cgroup.subtree_control")); got != "+cpu" {
		t.Errorf("root subtree_control = %q, want the controllers enabled (last +cpu)", got)
	}
	s := l.ForContainer("sb1", "c1", 64<<20, 50000, 100000, 512)
	dir := filepath.Join(root, CgroupParent, "sb1", "c1")
	if !s.V2 || s.Dir("memory") != dir || s.Dir("cpu") != dir || len(s.UniqueDirs()) != 1 {
		t.Fatalf("spec %+v: want one v2 directory %s for every controller", s, dir)
	}
	if err := s.create(); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"memory.max": "67108864", "cpu.max": "50000 100000", "cpu.weight": "20",
	} {
		if got := read(filepath.Join(dir, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}

	write(filepath.Join(dir, "cpu.stat"), "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
	write(filepath.Join(dir, "memory.current"), "10485760\n")
	write(filepath.Join(dir, "memory.stat"), "anon 6291456\nfile 4194304\ninactive_file 3145728\n")
	write(filepath.Join(dir, "memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
	u, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if u.CPUNanos != 1_500_000 || u.Memory != 10<<20 || u.WorkingSet != 7<<20 {
		t.Errorf("usage %+v, want 1.5 ms CPU, 10 MiB memory, 7 MiB working set", u)
	}
	if n, err := s.oomKills(); err != nil || n != 1 {
		t.Errorf("oom kills %d, %v; want 1", n, err)
	}

	// An empty cgroup: Kill asks cgroup.kill and finds no processes.
	write(filepath.Join(dir, "cgroup.procs"), "")
	if err := s.Kill(time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := read(filepath.Join(dir, "cgroup.kill")); strings.TrimSpace(got) != "1" {
		t.Errorf("cgroup.kill = %q, want 1", got)
	}
	// A real cgroup directory holds only kernel files, which rmdir ignores.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.Remove(filepath.Join(dir, e.Name()))
	}
	if err := s.Remove(time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("cgroup %s still there: %v", dir, err)
	}
}

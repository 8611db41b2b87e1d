// Command skiff is a Kubernetes-compatible orchestrator in one binary.
package main

import (
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"
)

func main() {
	// SKIFF_CPUPROFILE=FILE profiles any command until it returns (for
	// benchmarks that run `skiff agent` as a child and stop it with SIGTERM).
	// The file gets the process ID appended: child processes inherit the variable.
	if path := os.Getenv("SKIFF_CPUPROFILE"); path != "" {
		if f, err := os.Create(fmt.Sprintf("%s.%d", path, os.Getpid())); err == nil && pprof.StartCPUProfile(f) == nil {
			code := run()
			pprof.StopCPUProfile()
			f.Close()
			os.Exit(code)
		}
	}
	os.Exit(run())
}

func run() int {
	// kubectl parses its own flags: hand it the arguments untouched.
	if len(os.Args) > 1 && os.Args[1] == "kubectl" {
		return runKubectl(os.Args[2:])
	}
	root := &cobra.Command{
		Use:           "skiff",
		Short:         "A Kubernetes-compatible orchestrator in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServerCommand(), newAgentCommand(), newResetCommand(), newShimCommand(),
		newKubectlCommand(), newVersionCommand(), newBenchCommand())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "skiff:", err)
		return 1
	}
	return 0
}

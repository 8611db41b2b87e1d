// Command skiff is a Kubernetes-compatible orchestrator in one binary.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	// kubectl parses its own flags: hand it the arguments untouched.
	if len(os.Args) > 1 && os.Args[1] == "kubectl" {
		os.Exit(runKubectl(os.Args[2:]))
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
		os.Exit(1)
	}
}

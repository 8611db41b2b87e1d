package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiff-sh/skiff/internal/apiserver"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "v0.1.0-dev"

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print skiff's version and the Kubernetes API version it serves",
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Printf("skiff %s (Kubernetes API %s)\n", version, apiserver.KubernetesVersion.GitVersion)
		},
	}
}

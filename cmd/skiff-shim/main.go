// Command skiff-shim is the process runtime's container shim on its own: the
// same code as `skiff shim`, without the rest of skiff, so each container's
// supervisor starts in a millisecond and costs little memory.
package main

import (
	"os"

	"github.com/skiff-sh/skiff/internal/runtime/shim"
)

func main() { os.Exit(shim.ShimMain(os.Args[1:])) }

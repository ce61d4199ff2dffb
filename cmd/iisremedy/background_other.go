//go:build !unix

package main

import (
	"context"

	"github.com/spf13/cobra"
)

// backgroundChildFlag marks the process a `lab serve --background` parent starts.
const backgroundChildFlag = "background-child"

// startBackground is not available here: os/exec cannot hand the server a readiness pipe.
func startBackground(context.Context, *cobra.Command, *ioStreams, string) error {
	return usageErrorf("--background is not available on this system; start lab serve in a window of its own")
}

func detachOutput(*ioStreams) {}

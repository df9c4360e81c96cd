//go:build !dev

package main

import "github.com/spf13/cobra"

// devCommands is empty in the product binary: `meshguard dev` links the test
// harness (envtest), so it exists only in a -tags dev build (see dev.go).
func devCommands() []*cobra.Command { return nil }

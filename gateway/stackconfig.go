package gateway

import (
	"bytes"
	_ "embed" // the stack's configuration
)

//go:embed stack.yaml
var stackYAML []byte

// StackConfig returns gateway/stack.yaml as built into the binary: the
// stack's default configuration, so that `streamgate stack` runs from any
// directory.
func StackConfig() []byte { return bytes.Clone(stackYAML) }

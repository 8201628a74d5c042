//go:build tools

package tools

import _ "github.com/llm-d/llm-d-inference-sim/cmd/llm-d-inference-sim"

package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The binary runs the test kit's receiver (demo, bench), yet links no
// package testing: heraldtest takes its own TB for that reason, and its
// store helpers, which do import testing, live in heraldtest/storekit.
func TestBinaryDoesNotLinkTesting(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	for _, p := range deps {
		if p == "testing" {
			t.Fatalf("the herald binary links package testing; see which import brings it: go list -f '{{.ImportPath}}: {{.Imports}}' -deps ./cmd/herald | grep testing")
		}
	}
	for _, want := range []string{"github.com/heraldhooks/herald/heraldtest"} {
		found := false
		for _, p := range deps {
			found = found || p == want
		}
		if !found {
			t.Errorf("the binary no longer links %s: is this check still needed?", want)
		}
	}
}

package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The binary runs the test kit's receiver (demo, bench), yet links no
// package testing: heraldtest takes its own TB for that reason, and its
// store helpers, which do import testing, live in heraldtest/storekit. Nor
// does it link the modules only tests use: the contract validator and the
// Standard Webhooks library (decisions 0005 and 0025).
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
	for _, p := range deps {
		for _, testOnly := range []string{"github.com/pb33f/", "github.com/standard-webhooks/"} {
			if strings.HasPrefix(p, testOnly) {
				t.Errorf("the herald binary links %s, a test-only module", p)
			}
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

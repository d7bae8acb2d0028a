//go:build ignore

// testreport reads `go test -json` on stdin and prints what plain `go test`
// would (a line per package, the output of failing tests, build errors),
// then one line naming the tests that were skipped, so a skip never goes
// unnoticed. .ci/run pipes the test run through it with
// `go run .ci/testreport.go`; it is not part of Herald. It always exits 0:
// the test run's exit status is the one that counts.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

type skip struct{ name, reason string }

func main() {
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	buffered := map[string][]string{} // package + " " + test -> its output until it ends
	var order []string                // keys of buffered, in the order they started
	var skips []skip

	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Text()
		var e event
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &e) != nil {
			fmt.Fprintln(out, line) // go's own messages on stderr
			out.Flush()
			continue
		}
		key := e.Package + " " + e.Test
		switch {
		case e.Action == "build-output":
			fmt.Fprint(out, e.Output)
		case e.Test == "" && e.Action == "output":
			if e.Output != "PASS\n" && !strings.HasPrefix(e.Output, "=== ") {
				fmt.Fprint(out, e.Output)
			}
		case e.Test == "" && e.Action == "fail":
			// The test binary failed (a panic, a timeout): print what the
			// tests still running had said.
			for _, k := range order {
				if strings.HasPrefix(k, e.Package+" ") {
					fmt.Fprint(out, strings.Join(buffered[k], ""))
					delete(buffered, k)
				}
			}
		case e.Test == "":
		case e.Action == "run":
			order = append(order, key)
		case e.Action == "output":
			buffered[key] = append(buffered[key], e.Output)
		case e.Action == "fail":
			fmt.Fprint(out, strings.Join(buffered[key], ""))
			delete(buffered, key)
		case e.Action == "skip":
			skips = append(skips, skip{e.Package + "." + e.Test, reason(buffered[key])})
			delete(buffered, key)
		case e.Action == "pass":
			delete(buffered, key)
		}
		out.Flush()
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(out, "testreport: reading go test -json: %v\n", err)
	}

	if len(skips) == 0 {
		fmt.Fprintln(out, "Skipped tests: none.")
		return
	}
	names := make([]string, 0, len(skips))
	for _, s := range skips {
		n := strings.TrimPrefix(s.name, "github.com/heraldhooks/herald/")
		if s.reason != "" {
			n += " (" + s.reason + ")"
		}
		names = append(names, n)
	}
	fmt.Fprintf(out, "Skipped tests: %d: %s\n", len(skips), strings.Join(names, "; "))
}

// reason returns what a skipped test said last before "--- SKIP", without
// the file:line prefix.
func reason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "--- SKIP") || strings.HasPrefix(l, "=== ") {
			continue
		}
		if _, after, ok := strings.Cut(l, ": "); ok && strings.Contains(l[:len(l)-len(after)], ".go:") {
			l = after
		}
		return l
	}
	return ""
}

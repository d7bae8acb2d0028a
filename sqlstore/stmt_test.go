package sqlstore

import (
	"strings"
	"testing"
)

// TestInListPadsOnSQLiteOnly: IN lists take a few forms on SQLite, where
// each statement text is prepared once, and stay exact on PostgreSQL.
func TestInListPadsOnSQLiteOnly(t *testing.T) {
	sqlite, pg := &DB{}, &DB{pg: true}
	for _, tt := range []struct {
		vals       []string
		sqlite, pg string
	}{
		{[]string{"a"}, "?", "?"},
		{[]string{"a", "b", "c"}, "?,?,?,?", "?,?,?"},
		{[]string{"a", "b", "c", "d"}, "?,?,?,?", "?,?,?,?"},
		{[]string{"a", "b", "c", "d", "e"}, "?,?,?,?,?,?,?,?", "?,?,?,?,?"},
	} {
		in, args := inList(sqlite, tt.vals)
		if in != tt.sqlite || len(args) != strings.Count(tt.sqlite, "?") {
			t.Errorf("SQLite: inList(%v) = %q with %d args, want %q", tt.vals, in, len(args), tt.sqlite)
		}
		// Padding repeats the last value: the list selects the same rows.
		for i, a := range args {
			if want := tt.vals[min(i, len(tt.vals)-1)]; a != want {
				t.Errorf("SQLite: inList(%v) arg %d = %v, want %v", tt.vals, i, a, want)
			}
		}
		if in, args := inList(pg, tt.vals); in != tt.pg || len(args) != len(tt.vals) {
			t.Errorf("PostgreSQL: inList(%v) = %q with %d args, want %q", tt.vals, in, len(args), tt.pg)
		}
	}
}

package sqlstore

import (
	"errors"
	"strings"
	"testing"

	"github.com/heraldhooks/herald"
)

// FuzzDeliveryCursor: a delivery list cursor that decodes re-encodes to
// itself (one page, one spelling) and names a delivery id; anything else
// is a 400 naming cursor. Every delivery id makes a cursor that decodes
// back to it.
func FuzzDeliveryCursor(f *testing.F) {
	for _, s := range []string{encodeCursor("dlv_2ZyQn4"), encodeCursor("dlv_"), "", "ZDE6ZGx2XzE", "ZDE6ZGx2XzF", "ZDE6ZGx2XzE=",
		"ZDE6ZGx2\nXzE", "ZDE6ZXZ0XzE", "not a cursor", "ZDE6", "_-_-", encodeCursor("dlv_\x00\xff")} {
		f.Add(s, "dlv_2ZyQn4")
	}
	f.Fuzz(func(t *testing.T, c, id string) {
		got, err := decodeCursor(c)
		if err != nil {
			var he *herald.Error
			if !errors.As(err, &he) || he.Code != herald.EINVALID || he.Field != "cursor" || he.Message == "" {
				t.Fatalf("decodeCursor(%q) refused with %#v, want a 400 naming cursor", c, err)
			}
		} else if !strings.HasPrefix(got, "dlv_") || encodeCursor(got) != c {
			t.Fatalf("decodeCursor(%q) = %q, which encodes as %q", c, got, encodeCursor(got))
		}
		if !strings.HasPrefix(id, "dlv_") {
			id = "dlv_" + id
		}
		if back, err := decodeCursor(encodeCursor(id)); err != nil || back != id {
			t.Fatalf("the cursor of %q decodes as %q, %v", id, back, err)
		}
	})
}

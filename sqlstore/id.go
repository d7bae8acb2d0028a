package sqlstore

import (
	"math/big"
	"strings"
	"time"
)

// bigDigits is math/big's base-62 alphabet; herald.NewID's is ASCII order
// (0-9, A-Z, a-z). idFloor translates one into the other.
const (
	bigDigits    = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	heraldDigits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

var toHerald = strings.NewReplacer(pairs()...)

func pairs() []string {
	var out []string
	for i := range bigDigits {
		out = append(out, bigDigits[i:i+1], heraldDigits[i:i+1])
	}
	return out
}

// idFloor returns the smallest ID herald.NewID(prefix, t') can make for any
// t' at or after t (to the millisecond), so "id >= idFloor(t)" selects rows
// created at or after t by an index range on the ID.
func idFloor(prefix string, t time.Time) string {
	m := t.UnixMilli()
	if m <= 0 {
		return prefix + "_"
	}
	n := new(big.Int).Lsh(big.NewInt(m), 80)
	s := toHerald.Replace(n.Text(62))
	return prefix + "_" + strings.Repeat("0", max(22-len(s), 0)) + s
}

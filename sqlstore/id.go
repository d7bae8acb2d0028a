package sqlstore

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"

	"github.com/heraldhooks/herald"
)

// idFloor returns the smallest ID herald.NewID(prefix, t') can make for any
// t' at or after t (to the millisecond), so "id >= idFloor(t)" selects rows
// created at or after t by an index range on the ID.
func idFloor(prefix string, t time.Time) string {
	m := t.UnixMilli()
	if m <= 0 {
		return prefix + "_"
	}
	return herald.FormatID(prefix, uint64(m)<<16, 0)
}

// idSeq makes the IDs of the events and deliveries a store creates: the
// same form as herald.NewID (the creation time to the millisecond in the
// top 48 of 128 bits, then 80 bits, as 22 base-62 digits), but increasing
// in the order this process makes them: within a millisecond the 80 low
// bits count up from a random start instead of being drawn anew. Rows
// created together then sort, and are claimed when due at the same time,
// in the order they were made (with WITHOUT ROWID tables there is no rowid
// to break such ties), and each batch of inserts goes to the right edge of
// the primary key's B-tree instead of all over the current millisecond.
type idSeq struct {
	mu     sync.Mutex
	ms     int64
	hi, lo uint64 // the last ID's 128 bits
}

// next returns a new ID with prefix for a row created at now.
func (s *idSeq) next(prefix string, now time.Time) string {
	m := now.UnixMilli()
	s.mu.Lock()
	if m != s.ms {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], uint64(m)<<16)
		rand.Read(b[6:])
		b[6] &= 0x7f // room to count up within the millisecond
		s.ms, s.hi, s.lo = m, binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	} else {
		// The same millisecond: one more than the last. (A clock that
		// went back starts afresh above: an ID always carries its time.)
		s.lo++
		if s.lo == 0 {
			s.hi++
		}
	}
	hi, lo := s.hi, s.lo
	s.mu.Unlock()
	return herald.FormatID(prefix, hi, lo)
}

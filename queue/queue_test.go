package queue_test

import (
	"slices"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/queue"
)

// TestHandoffRoom: a write's handoff becomes the domain's room field for
// field (the rule itself is tested in package herald), and no handoff
// means no room.
func TestHandoffRoom(t *testing.T) {
	now := time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC)
	lease := now.Add(herald.LeaseMargin)
	fast := &herald.Webhook{ID: "fast", TimeoutSeconds: 30}
	slow := &herald.Webhook{ID: "slow", TimeoutSeconds: 120}
	other := &herald.Webhook{ID: "other", TimeoutSeconds: 5}

	h := &queue.Handoff{Owner: "n1", LeaseUntil: lease, Room: map[string]int{"fast": 2, "slow": 0}, Default: 1, Limit: 3}
	r := h.HandoffRoom()
	var got []string
	for _, w := range []*herald.Webhook{fast, slow, fast, fast, other, other} {
		s := r.Place(w, now)
		if s.Status == herald.StatusSent && (s.Owner != "n1" || !s.DueAt.Equal(herald.LeaseEnd(lease, time.Duration(w.TimeoutSeconds)*time.Second))) {
			t.Errorf("%s handed off as %+v; want owned by n1 until the lease plus its timeout", w.ID, s)
		}
		got = append(got, w.ID+":"+s.Status)
	}
	want := []string{"fast:SENT", "slow:PENDING", "fast:SENT", "fast:PENDING", "other:SENT", "other:PENDING"}
	if !slices.Equal(got, want) {
		t.Errorf("placed %v, want %v (Room per webhook, Default for the others, Limit in all)", got, want)
	}
	if h.Room["fast"] != 2 {
		t.Errorf("the handoff's room was changed to %v; the room is counted on a copy", h.Room)
	}

	var none *queue.Handoff
	if s := none.HandoffRoom().Place(fast, now); s.Status != herald.StatusPending || s.Owner != "" || !s.DueAt.Equal(now) {
		t.Errorf("without a handoff a delivery is created %+v, want PENDING, unowned, due now", s)
	}
}

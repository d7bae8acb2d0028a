package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhooks/herald/client"
)

// flapProxy stands between Herald and a receiver on a fixed loopback
// address and takes the receiver off the network and back: down closes
// its listener (new connections are refused) and cuts every connection
// open through it, as a receiver's crash or a network partition does.
type flapProxy struct {
	addr, upstream string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func newFlapProxy(t *testing.T, upstream string) *flapProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &flapProxy{addr: ln.Addr().String(), upstream: upstream, conns: map[net.Conn]bool{}}
	p.serve(ln)
	t.Cleanup(func() { p.down(); p.wg.Wait() })
	return p
}

func (p *flapProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.upstream)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			p.wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer p.wg.Done()
				io.Copy(dst, src)
				dst.Close()
				src.Close()
				p.mu.Lock()
				delete(p.conns, dst)
				delete(p.conns, src)
				p.mu.Unlock()
			}
			go pipe(up, c)
			go pipe(c, up)
		}
	}()
}

// down takes the receiver off the network and returns how many client
// connections it cut (requests may have been in flight on them).
func (p *flapProxy) down() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	n := len(p.conns) / 2
	for c := range p.conns {
		c.Close()
	}
	return n
}

// up puts the receiver back, on the same address.
func (p *flapProxy) up(t *testing.T) {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Errorf("listen again on %s: %v", p.addr, err)
		return
	}
	p.serve(ln)
}

// TestFlappingReceiver: a receiver that is up for a period and down for
// the next (connections refused, those open cut), over and over, while 10
// events a second arrive. Every event arrives; the duplicates are at most
// the connections cut at the flaps (requests that were in flight); and
// once the receiver is up for good, what it missed arrives within a
// period: the retries caught up when it first answered again, rather than
// at the schedule's later steps. CI runs 2 s periods for 16 s;
// HERALD_TEST_FLAP_FULL=1 runs the full scenario, 30 s periods for 5
// minutes.
func TestFlappingReceiver(t *testing.T) {
	period, total := 2*time.Second, 16*time.Second
	if os.Getenv("HERALD_TEST_FLAP_FULL") == "1" {
		period, total = 30*time.Second, 5*time.Minute
	}
	p := startHerald(t, nil, "--database", "sqlite:"+t.TempDir()+"/herald.db", "--allow-private-destinations")
	recv := newReceiver(t)
	proxy := newFlapProxy(t, strings.TrimPrefix(recv.URL, "http://"))
	_, secret := setupWebhook(t, p.client(t), "http://"+proxy.addr+"/hook")
	recv.SetSecrets(secret)
	producer, err := client.New(p.URL, client.WithAPIClient("admin", testAdminSecret))
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), total)
	defer cancel()
	cut := 0
	flaps := make(chan struct{})
	go func() {
		defer close(flaps)
		isUp := true
		for {
			select {
			case <-ctx.Done():
				if !isUp {
					proxy.up(t)
				}
				return
			case <-time.After(period):
			}
			if isUp {
				cut += proxy.down()
			} else {
				proxy.up(t)
			}
			isUp = !isUp
		}
	}()
	var ids []string
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ctx.Err() == nil; i++ {
		<-tick.C
		a, err := producer.SendEvent(context.Background(), "acme", "sandbox", "", client.Event{
			EventSubtype: "PATIENT_CREATED", PatientID: fmt.Sprintf("flap-%d", i)})
		if err != nil {
			t.Fatalf("post event %d: %v", i, err)
		}
		ids = append(ids, a.EventID)
	}
	<-flaps
	upAt := time.Now()
	recv.WaitDelivered(t, period+15*time.Second, ids...)
	caughtUp := time.Since(upAt)
	dups := recv.Duplicates()
	t.Logf("%d events over %v of %v flaps; all arrived %v after the receiver was up for good; %d duplicates, %d connections cut",
		len(ids), total, period, caughtUp.Round(time.Millisecond), dups, cut)
	if dups > cut {
		t.Errorf("%d duplicates, more than the %d connections cut at the flaps", dups, cut)
	}
	if caughtUp > period+5*time.Second {
		t.Errorf("what the receiver missed took %v to arrive once it was up for good; want within a period (%v) and 5 s", caughtUp, period)
	}
}

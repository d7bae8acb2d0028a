package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhooks/herald/client"
	"github.com/heraldhooks/herald/heraldtest"
)

// hostile is a receiver that misbehaves, and what Herald must record of it.
type hostile struct {
	name string
	url  string
	want string // in the first attempt's error
}

// rawReceiver listens on loopback and hands each connection, once the
// request's headers are read, to serve. It returns its base URL.
func rawReceiver(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				go func() { <-done; c.Close() }()
				// Read the request's headers; the body is small and
				// arrives with them.
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if line == "\r\n" {
						break
					}
				}
				serve(c)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// trickle writes s one byte at a time, every gap, until done or an error.
func trickle(c net.Conn, s string, gap time.Duration) {
	for i := range len(s) {
		if _, err := c.Write([]byte{s[i]}); err != nil {
			return
		}
		time.Sleep(gap)
	}
}

// tlsReceiver serves 200 over TLS with pair.
func tlsReceiver(t *testing.T, pair heraldtest.Pair) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair.TLS}})
	if err != nil {
		t.Fatal(err)
	}
	// Its handshakes fail on purpose: their log lines are noise here.
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String()
}

// rss returns the resident memory of process pid, in bytes.
func rss(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if kb, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(kb), "kB")), 10, 64)
			return n << 10
		}
	}
	t.Fatal("no VmRSS in /proc status")
	return 0
}

// TestHostileReceivers points webhooks with a 1 s timeout at receivers
// that misbehave in every way a receiver in the wild does, beside a healthy
// one, on a real node: each attempt ends within its timeout (plus a
// margin), is recorded with an error a person understands and is retried;
// the node's memory stays within 50 MiB of what it was before; and the
// healthy webhook's p99 stays within 2x (plus 25 ms of timer noise) of
// what it was alone.
func TestHostileReceivers(t *testing.T) {
	ca := heraldtest.NewCA(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	other := heraldtest.NewCA(t) // not trusted: its certificates look self-signed to Herald
	const pad = "X-Pad: " + "................................................................................................\r\n"
	hostiles := []hostile{
		{"wh-slow-headers", rawReceiver(t, func(c net.Conn) {
			trickle(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", time.Second)
		}), "headers too slowly: not complete within 1s"},
		{"wh-slow-body", rawReceiver(t, func(c net.Conn) {
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"))
			trickle(c, strings.Repeat("x", 100), time.Second)
		}), "sent the body of its 200 OK answer too slowly"},
		{"wh-endless-body", rawReceiver(t, func(c net.Conn) {
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"))
			chunk := []byte(strings.Repeat("endless ", 1024))
			for {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}), "with a body over 68 KiB"},
		{"wh-huge-headers", rawReceiver(t, func(c net.Conn) {
			c.Write([]byte("HTTP/1.1 200 OK\r\n"))
			for range (1 << 30) / len(pad) { // 1 GiB, if Herald read it all
				if _, err := c.Write([]byte(pad)); err != nil {
					return
				}
			}
		}), "answer headers are over 64 KiB"},
		{"wh-never-answers", rawReceiver(t, func(c net.Conn) {
			time.Sleep(10 * time.Second)
		}), "no answer within 1s"},
		{"wh-resets", rawReceiver(t, func(c net.Conn) {
			c.(*net.TCPConn).SetLinger(0) // close sends RST
		}), "connection reset by the receiver"},
		{"wh-closes-after-headers", rawReceiver(t, func(c net.Conn) {
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"))
		}), "closed the connection in the middle of its answer"},
		{"wh-after-timeout", rawReceiver(t, func(c net.Conn) {
			// The timeout, and a hair more: exactly at it, a busy machine
			// may deliver the answer before the timer fires.
			time.Sleep(time.Second + 50*time.Millisecond)
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		}), "no answer within 1s"},
		{"wh-self-signed", tlsReceiver(t, other.Issue(t, "receiver", "127.0.0.1")), "not signed by an authority Herald trusts"},
		{"wh-expired-cert", tlsReceiver(t, ca.IssueBetween(t, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour), "receiver", "127.0.0.1")), "TLS certificate expired at"},
		{"wh-wrong-host", tlsReceiver(t, ca.Issue(t, "receiver", "other.example")), "is for other.example, not for 127.0.0.1"},
		{"wh-no-such-host", "http://receiver.invalid", "host name receiver.invalid not found"},
	}

	p := startHerald(t, nil, "--database", "sqlite:"+filepath.Join(t.TempDir(), "herald.db"),
		"--allow-private-destinations", "--destination-ca-file", caFile)
	c := p.client(t)
	healthy := newReceiver(t)
	const inst = "/v1/tenants/acme/instances/sandbox"
	mustDo(t, c, "POST", "/v1/tenants", map[string]any{"name": "acme"}, nil)
	mustDo(t, c, "POST", "/v1/tenants/acme/instances", map[string]any{"name": "sandbox"}, nil)
	names := []string{"wh-healthy"}
	for _, h := range hostiles {
		names = append(names, h.name)
	}
	for _, n := range names {
		mustDo(t, c, "POST", "/v1/tenants/acme/designer/webhooks", map[string]any{
			"name": n, "title": n, "triggers": []map[string]string{{"eventEntity": "PATIENT"}}}, nil)
	}
	mustDo(t, c, "POST", "/v1/tenants/acme/designer/publish", map[string]any{}, nil)
	mustDo(t, c, "PATCH", inst+"/webhooks/wh-healthy", map[string]any{"url": healthy.URL + "/hook"}, nil)
	var secret struct{ Secret string }
	mustDo(t, c, "GET", inst+"/webhooks/wh-healthy/secret", nil, &secret)
	healthy.SetSecrets(secret.Secret)
	mustDo(t, c, "POST", inst+"/webhooks/wh-healthy/activate", nil, nil)
	for _, h := range hostiles {
		mustDo(t, c, "PATCH", inst+"/webhooks/"+h.name, map[string]any{"url": h.url + "/hook", "timeoutSeconds": 1}, nil)
	}

	producer, err := client.New(p.URL, client.WithAPIClient("admin", testAdminSecret))
	if err != nil {
		t.Fatal(err)
	}
	// load posts 100 events at 40 a second and returns the healthy
	// webhook's p99: from posting an event to its arrival.
	load := func(phase string) time.Duration {
		posted := map[string]time.Time{}
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for i := range 100 {
			<-tick.C
			start := time.Now()
			a, err := producer.SendEvent(context.Background(), "acme", "sandbox", "", client.Event{
				EventSubtype: "PATIENT_UPDATED", PatientID: fmt.Sprintf("%s-%d", phase, i)})
			if err != nil {
				t.Fatalf("%s: post event %d: %v", phase, i, err)
			}
			posted[a.EventID] = start
		}
		ids := make([]string, 0, len(posted))
		for id := range posted {
			ids = append(ids, id)
		}
		healthy.WaitDelivered(t, 30*time.Second, ids...)
		var lat []time.Duration
		for id, r := range healthy.Delivered() {
			if at, ok := posted[id]; ok {
				lat = append(lat, max(r.At.Sub(at), 0))
			}
		}
		slices.Sort(lat)
		return lat[len(lat)*99/100]
	}

	activate := func(verb string) {
		for _, h := range hostiles {
			mustDo(t, c, "POST", inst+"/webhooks/"+h.name+"/"+verb, nil, nil)
		}
	}
	alone := load("alone")
	baseline := rss(t, p.cmd.Process.Pid)
	activate("activate")
	var peak int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				peak = max(peak, rss(t, p.cmd.Process.Pid))
			}
		}
	}()
	beside := load("beside")
	// Let every hostile webhook's attempts run into their timeouts.
	time.Sleep(2 * time.Second)
	close(stop)
	<-sampled

	t.Logf("healthy p99: %v alone, %v beside %d hostile receivers; RSS %d MiB before, peak %d MiB",
		alone, beside, len(hostiles), baseline>>20, peak>>20)
	if beside > 2*alone+25*time.Millisecond {
		// The suite runs packages side by side on two cores: a neighbour's
		// burst can cost one measurement its p99. Measure both again once.
		activate("deactivate")
		alone = load("alone-again")
		activate("activate")
		beside = load("beside-again")
		t.Logf("measured again: healthy p99 %v alone, %v beside", alone, beside)
	}
	if beside > 2*alone+25*time.Millisecond {
		t.Errorf("the healthy webhook's p99 went from %v alone to %v beside the hostile receivers: over 2x", alone, beside)
	}
	if peak > baseline+50<<20 {
		t.Errorf("Herald's RSS went from %d MiB to %d MiB beside the hostile receivers: over 50 MiB more", baseline>>20, peak>>20)
	}

	for _, h := range hostiles {
		ds := listDeliveries(t, c, inst, "webhook="+h.name)
		if len(ds) == 0 {
			t.Errorf("%s: no delivery", h.name)
			continue
		}
		var d delivery
		mustDo(t, c, "GET", inst+"/deliveries/"+ds[len(ds)-1].ID, nil, &d) // the oldest
		if len(d.Attempts) == 0 {
			t.Errorf("%s: the oldest delivery has no attempt yet: %+v", h.name, d)
			continue
		}
		a := d.Attempts[0]
		if !strings.Contains(a.Error, h.want) {
			t.Errorf("%s: attempt error %q, want it to say %q", h.name, a.Error, h.want)
		}
		if a.DurationMs > 1500 {
			t.Errorf("%s: the attempt took %d ms, beyond the 1 s timeout and a 500 ms margin", h.name, a.DurationMs)
		}
		if d.Status != "RETRYING" && d.Status != "SENT" {
			t.Errorf("%s: delivery %s is %s, want it retried (%s)", h.name, d.ID, d.Status, d.WaitReason)
		}
	}
}

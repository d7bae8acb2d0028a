package dispatch

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhooks/herald/netguard"
	"golang.org/x/net/http/httpguts"
)

// rawServer accepts connections on loopback and runs serve on each, in
// its own goroutine; it counts the connections it accepted.
type rawServer struct {
	ln    net.Listener
	conns atomic.Int32
	wg    sync.WaitGroup
}

func startRawServer(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			s.wg.Go(func() {
				defer c.Close()
				serve(c, bufio.NewReader(c))
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *rawServer) url(path string) *url.URL {
	u, _ := url.Parse("http://" + s.ln.Addr().String() + path)
	return u
}

// readRequest reads one request and its body; false when the client is
// gone.
func readRequest(br *bufio.Reader) (*http.Request, []byte, bool) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, nil, false
	}
	body, err := io.ReadAll(req.Body)
	return req, body, err == nil
}

func testWire(t *testing.T) *wireClient {
	t.Helper()
	c := newWireClient(netguard.Policy{AllowPrivate: true}, nil, 4, nil)
	t.Cleanup(c.close)
	return c
}

func post(t *testing.T, c *wireClient, u *url.URL, h http.Header, body string) (*answer, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if h == nil {
		h = http.Header{}
	}
	return c.post(ctx, u, h, []byte(body), &reqProgress{})
}

// The request is what a receiver expects (method, target with query,
// Host, headers, a Content-Length body), and one connection carries the
// requests one after another.
func TestWireRequestAndReuse(t *testing.T) {
	var got []string
	var mu sync.Mutex
	s := startRawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, body, ok := readRequest(br)
			if !ok {
				return
			}
			mu.Lock()
			got = append(got, req.Method+" "+req.RequestURI+" "+req.Host+" "+req.Header.Get("X-A")+" "+string(body))
			mu.Unlock()
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	c := testWire(t)
	for i := range 3 {
		a, err := post(t, c, s.url("/hook?x=1&y=%2F"), http.Header{"X-A": {"v"}}, "body")
		if err != nil || a.status != 200 || string(a.body) != "ok" || a.bodyErr != nil {
			t.Fatalf("request %d: %+v, %v", i, a, err)
		}
	}
	want := "POST /hook?x=1&y=%2F " + s.ln.Addr().String() + " v body"
	for _, g := range got {
		if g != want {
			t.Errorf("receiver got %q, want %q", g, want)
		}
	}
	if n := s.conns.Load(); n != 1 {
		t.Errorf("3 requests took %d connections, want 1 kept alive", n)
	}
}

// A receiver that closes a kept-alive connection while it is idle (Node's
// default is after 5 s) does not fail the next request: it goes again on
// a new connection.
func TestWireIdleConnectionClosedByReceiver(t *testing.T) {
	s := startRawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, _, ok := readRequest(br); ok {
			// Keep-alive by the answer's headers, closed all the same.
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		}
	})
	c := testWire(t)
	for i := range 3 {
		time.Sleep(20 * time.Millisecond) // the close reaches the idle connection
		if a, err := post(t, c, s.url("/"), nil, "x"); err != nil || a.status != 200 {
			t.Fatalf("request %d after the receiver closed the idle connection: %+v, %v", i, a, err)
		}
	}
	if n := s.conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3 (one per request)", n)
	}
}

// When every kept connection was closed by the receiver, the second try
// does not take another of them: it dials.
func TestWireAllIdleConnectionsClosedByReceiver(t *testing.T) {
	var arrived sync.WaitGroup
	arrived.Add(2)
	both := make(chan struct{})
	go func() { arrived.Wait(); close(both) }()
	var first atomic.Int32
	s := startRawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, _, ok := readRequest(br); ok {
			if first.Add(1) <= 2 {
				// The first two wait for each other, so they take two
				// connections, both kept by the client and closed here.
				arrived.Done()
				<-both
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		}
	})
	c := testWire(t)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if a, err := post(t, c, s.url("/"), nil, "x"); err != nil || a.status != 200 {
				t.Errorf("first requests: %+v, %v", a, err)
			}
		})
	}
	wg.Wait()
	time.Sleep(20 * time.Millisecond) // both closes reach the idle connections
	if a, err := post(t, c, s.url("/"), nil, "x"); err != nil || a.status != 200 {
		t.Fatalf("request with two stale idle connections: %+v, %v", a, err)
	}
}

// Informational answers are skipped, chunked bodies are read whole, and
// a connection with bytes after the answer is not used again.
func TestWireAnswers(t *testing.T) {
	s := startRawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, _, ok := readRequest(br)
			if !ok {
				return
			}
			switch req.URL.Path {
			case "/early":
				io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
			case "/extra":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokGARBAGE")
			case "/close":
				io.WriteString(c, "HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nRetry-After: 7\r\n\r\nbroken")
				return
			}
		}
	})
	c := testWire(t)
	a, err := post(t, c, s.url("/early"), nil, "")
	if err != nil || a.status != 202 || string(a.body) != "hello world" || a.bodyErr != nil {
		t.Fatalf("103 then chunked 202: %+v, %v", a, err)
	}
	if a, err = post(t, c, s.url("/close"), nil, ""); err != nil || a.status != 500 || string(a.body) != "broken" || a.header.Get("Retry-After") != "7" {
		t.Fatalf("close-delimited 500: %+v, %v", a, err)
	}
	if a, err = post(t, c, s.url("/extra"), nil, ""); err != nil || a.status != 200 {
		t.Fatalf("answer with bytes after it: %+v, %v", a, err)
	}
	if a, err = post(t, c, s.url("/early"), nil, ""); err != nil || a.status != 202 {
		t.Fatalf("after the answer with bytes after it: %+v, %v", a, err)
	}
	if n := s.conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3: the first kept, a new one after Connection: close, another after the extra bytes", n)
	}
}

// A header that would split the request (a line break in a value, a
// space in a name) is refused before anything is sent.
func TestWireRefusesHeadersThatSplitTheRequest(t *testing.T) {
	s := startRawServer(t, func(c net.Conn, br *bufio.Reader) {
		readRequest(br)
	})
	c := testWire(t)
	for _, h := range []http.Header{
		{"X-A": {"v\r\nX-Injected: 1"}},
		{"X-A": {"v\nX"}},
		{"X A": {"v"}},
		{"": {"v"}},
	} {
		_, err := post(t, c, s.url("/"), h, "x")
		if be := (*buildError)(nil); err == nil || !errors.As(err, &be) {
			t.Errorf("header %q: %v, want a build error", h, err)
		}
	}
	time.Sleep(20 * time.Millisecond)
	if n := s.conns.Load(); n != 0 {
		t.Errorf("%d connections made for requests that were refused", n)
	}
}

// An internationalised host name is dialed, named in Host and in TLS's
// server name in ASCII, as net/http does.
func TestWireIDNHost(t *testing.T) {
	u, _ := url.Parse("https://bücher.example:8443/hook?q=1")
	a, err := asciiHost(u)
	if err != nil || a.Host != "xn--bcher-kva.example:8443" || a.Hostname() != "xn--bcher-kva.example" || a.RequestURI() != "/hook?q=1" {
		t.Fatalf("asciiHost(%s) = %v, %v", u, a, err)
	}
	if u.Host != "bücher.example:8443" {
		t.Errorf("asciiHost changed its argument: %s", u)
	}
	req, err := appendRequest(nil, a, http.Header{}, nil)
	if err != nil || !strings.Contains(string(req), "\r\nHost: xn--bcher-kva.example:8443\r\n") {
		t.Errorf("request %q, %v", req, err)
	}
}

func TestHostHeader(t *testing.T) {
	for raw, want := range map[string]string{
		"http://127.0.0.1:8080/x":  "127.0.0.1:8080",
		"https://Example.com/x":    "Example.com",
		"http://[::1]:9/x":         "[::1]:9",
		"http://[fe80::1%25eth0]/": "[fe80::1]",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := hostHeader(u); got != want {
			t.Errorf("hostHeader(%s) = %q, want %q", raw, got, want)
		}
		if got := dialAddr(u); !strings.Contains(got, ":") {
			t.Errorf("dialAddr(%s) = %q has no port", raw, got)
		}
	}
}

// The wire client sends a header name or value exactly when net/http
// would: names are tokens, values have no control character but tab.
func TestWireHeaderRulesAreNetHTTPs(t *testing.T) {
	for b := range 256 {
		for _, s := range []string{string(rune(b)), "X-" + string([]byte{byte(b)}) + "a", "a" + string([]byte{byte(b)})} {
			if got, want := validHeaderName(s), httpguts.ValidHeaderFieldName(s); got != want {
				t.Errorf("validHeaderName(%q) = %v, net/http says %v", s, got, want)
			}
			if got, want := validHeaderValue(s), httpguts.ValidHeaderFieldValue(s); got != want {
				t.Errorf("validHeaderValue(%q) = %v, net/http says %v", s, got, want)
			}
		}
	}
}

// BenchmarkPost compares the wire client with net/http's client on the
// same loopback receiver (a net/http server answering 200 to 1 KiB
// POSTs), requests sent from 32 goroutines. Client and server share the
// process, so ns/op is the cost of both sides; the difference between the
// two is the client's (decision 0026).
//
//	go test ./dispatch -run '^$' -bench Post -benchmem -cpu 2
func BenchmarkPost(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	u, _ := url.Parse("http://" + ln.Addr().String() + "/hook")
	body := []byte(strings.Repeat("x", 1024))
	header := func() http.Header {
		return http.Header{"Content-Type": {"application/json"}, "User-Agent": {"Herald/bench"},
			"Webhook-Id": {"evt_0354OAw4uQSAVmLcMMXiLG"}, "Webhook-Timestamp": {"1764547200"},
			"Webhook-Signature": {"v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="}}
	}
	b.Run("wire", func(b *testing.B) {
		c := newWireClient(netguard.Policy{AllowPrivate: true}, nil, 64, nil)
		defer c.close()
		b.SetParallelism(16) // 32 goroutines with -cpu 2
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				a, err := c.post(ctx, u, header(), body, &reqProgress{})
				cancel()
				if err != nil || a.status != 200 {
					b.Fatal(a, err)
				}
			}
		})
	})
	b.Run("nethttp", func(b *testing.B) {
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		defer c.CloseIdleConnections()
		b.SetParallelism(16)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
				req.Header = header()
				resp, err := c.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				cancel()
			}
		})
	})
}

package heraldtest_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/signature"
)

// A receiver that checks what Herald (or your own sender) posts: give it
// the webhook's secret, point the webhook at its URL, and read what
// arrived. In a test, heraldtest.NewReceiver(t, cfg) does the same and
// closes it when the test ends; rc.WaitDelivered(t, time.Minute, eventID)
// waits for a delivery.
func ExampleReceiver() {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	rc, err := heraldtest.StartReceiver(heraldtest.ReceiverConfig{Secrets: []string{secret}})
	if err != nil {
		panic(err)
	}
	defer rc.Close()

	// What Herald does for each attempt: sign id.timestamp.body.
	send := func(id, body string, secrets ...string) int {
		now := time.Now()
		sig, _ := signature.SignAll(secrets, id, now, []byte(body))
		req, _ := http.NewRequest("POST", rc.URL+"/hooks/patients", strings.NewReader(body))
		req.Header.Set(signature.HeaderID, id)
		req.Header.Set(signature.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
		req.Header.Set(signature.HeaderSignature, sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	fmt.Println(send("evt_1", `{"eventSubtype":"PATIENT_CREATED"}`, secret))
	fmt.Println(send("evt_1", `{"eventSubtype":"PATIENT_CREATED"}`, secret)) // a retry: same webhook-id
	fmt.Println(send("evt_2", `{"eventSubtype":"PATIENT_UPDATED"}`, "whsec_"+"c29tZW9uZSBlbHNlJ3Mgc2VjcmV0"))

	for _, r := range rc.Requests() {
		fmt.Printf("%s %s verified=%t seen=%d answered %d\n", r.Path, r.ID, r.Verified, r.Seen, r.Status)
	}
	fmt.Println("duplicates:", rc.Duplicates(), "signature failures:", rc.SignatureFailures(), "delivered:", len(rc.Delivered()))
	// Output:
	// 200
	// 200
	// 401
	// /hooks/patients evt_1 verified=true seen=1 answered 200
	// /hooks/patients evt_1 verified=true seen=2 answered 200
	// /hooks/patients evt_2 verified=false seen=0 answered 401
	// duplicates: 1 signature failures: 1 delivered: 1
}

// Answering a first attempt with 503 and Retry-After, as a receiver under
// load would, to see the sender retry.
func ExampleReceiver_SetRespond() {
	rc, err := heraldtest.StartReceiver(heraldtest.ReceiverConfig{})
	if err != nil {
		panic(err)
	}
	defer rc.Close()
	rc.SetRespond(func(w http.ResponseWriter, r *http.Request, req *heraldtest.Request) {
		if req.Seen == 1 {
			heraldtest.Answer{Status: http.StatusServiceUnavailable, RetryAfter: 30 * time.Second}.Respond(w, r, req)
		}
	})
	for range 2 {
		req, _ := http.NewRequest("POST", rc.URL, strings.NewReader(`{}`))
		req.Header.Set(signature.HeaderID, "evt_1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Output:
	// 503 30
	// 200
}

// A clock stopped at a time, moved by the test.
func ExampleClock() {
	clock := heraldtest.NewClock(time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC))
	// dispatch.Config{Now: clock.Now, ...}, sqlstore.Config{Now: clock.Now, ...}
	fmt.Println(clock.Now().Format(time.TimeOnly))
	fmt.Println(clock.Advance(90 * time.Second).Format(time.TimeOnly))
	clock.Set(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))
	fmt.Println(clock.Now().Format(time.DateTime))
	// Output:
	// 17:00:00
	// 17:01:30
	// 2026-11-27 09:00:00
}

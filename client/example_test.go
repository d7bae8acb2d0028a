package client_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/heraldhooks/herald/client"
)

// A producer sends a patient's events, all or none, and learns how many
// webhooks each goes to.
func Example() {
	ctx := context.Background()
	c, err := client.New("https://herald.example.com", client.WithAPIClient("ehr-sync", os.Getenv("HERALD_API_SECRET")))
	if err != nil {
		log.Fatal(err)
	}
	accepted, err := c.SendEvents(ctx, "acme", "sandbox",
		client.Event{EventSubtype: "PATIENT_CREATED", PatientID: "49ec5a8e", SourceID: "49ec5a8e"},
		client.Event{EventSubtype: "ASSESSMENT_COMPLETED", PatientID: "49ec5a8e", SourceID: "asm-7731"})
	if err != nil {
		log.Fatal(err) // a *client.Error says what was wrong, and which field
	}
	for _, a := range accepted {
		fmt.Println(a.EventID, a.Deliveries)
	}
}

// A retry-safe send: the same idempotency key gives back the first event.
func ExampleClient_SendEvent() {
	ctx := context.Background()
	c, _ := client.New("https://herald.example.com", client.WithToken(os.Getenv("HERALD_TOKEN")))
	a, err := c.SendEvent(ctx, "acme", "sandbox", "chart-4471-v3", client.Event{EventSubtype: "PATIENT_UPDATED", PatientID: "49ec5a8e"})
	if client.StatusOf(err) == 503 {
		log.Print("not stored: the database is unavailable; retry with the same key")
		return
	}
	fmt.Println(a.EventID)
}

// Reading the delivery log of one webhook, page by page, without handling
// cursors.
func ExampleClient_AllDeliveries() {
	ctx := context.Background()
	c, _ := client.New("https://herald.example.com", client.WithToken(os.Getenv("HERALD_TOKEN")))
	for d, err := range c.AllDeliveries(ctx, "acme", "sandbox", client.DeliveryFilter{Webhook: "wh-patient-sync", Status: "FAILED"}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(d.ID, d.EventSubtype, d.LastStatusCode, d.WaitReason)
	}
}

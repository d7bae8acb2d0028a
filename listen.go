package herald

import "time"

// ListenURL is the webhook URL that routes a webhook's deliveries to the
// `herald listen` processes connected to it, over the stream
// GET .../webhooks/{name}/listen, instead of to an address Herald dials.
// It is exactly "listen:", nothing before or after.
const ListenURL = "listen:"

// ListenRequest is one attempt handed to a listener: the exact request
// Herald would have sent, for the listener to post, unchanged, to its
// local URL. It is what each event of the listen stream carries.
type ListenRequest struct {
	// ID names this attempt on the stream; the listener's answer quotes it
	// (POST .../webhooks/{name}/listen/{id}).
	ID string `json:"id"`
	// DeliveryID is the delivery this attempt is of; "" for a test request.
	DeliveryID string `json:"deliveryId,omitempty"`
	// Attempt counts the delivery's attempts from 1.
	Attempt int `json:"attempt"`
	// EventID and EventSubtype say which event this is, for the listener's
	// log line (ids and codes: no health data).
	EventID      string `json:"eventId"`
	EventSubtype string `json:"eventSubtype"`
	// Headers are the request's headers, one value each: content-type,
	// user-agent, the webhook's configured headers and the signed
	// webhook-id, webhook-timestamp and webhook-signature.
	Headers map[string]string `json:"headers"`
	// QueryParameters are the webhook's configured query parameters, to
	// add to the local URL.
	QueryParameters []NameValue `json:"queryParameters,omitempty"`
	// Body is the request body, exactly as signed (JSON text).
	Body string `json:"body"`
	// TimeoutSeconds is how long Herald waits for the answer.
	TimeoutSeconds int `json:"timeoutSeconds"`
}

// ListenAnswer is what a listener says its local URL answered to a
// ListenRequest.
type ListenAnswer struct {
	// StatusCode is the local answer's status; 0 when there was none.
	StatusCode int `json:"statusCode"`
	// Body is the start of the local answer's body (Herald keeps the first
	// MaxResponseBody bytes).
	Body string `json:"body"`
	// RetryAfter is the local answer's Retry-After header, if any.
	RetryAfter string `json:"retryAfter,omitempty"`
	// DurationMs is how long the local request took.
	DurationMs int64 `json:"durationMs"`
	// Error says why the local URL gave no answer ("connection refused").
	Error string `json:"error,omitempty"`
}

// Listeners is the hub that hands a `listen:` webhook's attempts to the
// listeners connected to this node. dispatch.Engine implements it; the
// API's stream and answer routes use it.
type Listeners interface {
	// Listen connects a listener of the webhook with this ID: it receives
	// the webhook's attempts on requests, shared round robin with the
	// webhook's other listeners, until stop is called. done is closed by
	// stop, or when this node stops taking listeners (it shuts down): the
	// stream must then end. Ending fails, at once, the attempts it received
	// and did not answer.
	Listen(webhookID string) (requests <-chan *ListenRequest, done <-chan struct{}, stop func())
	// Answer gives the answer to request id of the webhook. ENOTFOUND when
	// no such request waits (it was answered or timed out already).
	Answer(webhookID, id string, a ListenAnswer) error
}

// ListenKeepAlive is how often the listen stream sends a comment when it
// has nothing else to send, so that a listener (and every proxy between)
// sees it alive, and a dead stream is noticed within about this long.
const ListenKeepAlive = 15 * time.Second

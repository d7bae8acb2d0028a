package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/heraldhooks/herald"
)

// Error codes of the HTTP layer only; the domain's codes are in the root.
const (
	codeMethodNotAllowed     = "method_not_allowed"     // 405
	codeUnsupportedMediaType = "unsupported_media_type" // 415
)

// statusOf maps an error code to its HTTP status.
var statusOf = map[string]int{
	herald.EINVALID:          http.StatusBadRequest,
	herald.EUNAUTHORIZED:     http.StatusUnauthorized,
	herald.EFORBIDDEN:        http.StatusForbidden,
	herald.ENOTFOUND:         http.StatusNotFound,
	codeMethodNotAllowed:     http.StatusMethodNotAllowed,
	herald.ECONFLICT:         http.StatusConflict,
	herald.ETOOLARGE:         http.StatusRequestEntityTooLarge,
	codeUnsupportedMediaType: http.StatusUnsupportedMediaType,
	herald.EUNPROCESSABLE:    http.StatusUnprocessableEntity,
	herald.ERATELIMITED:      http.StatusTooManyRequests,
	herald.EUNAVAILABLE:      http.StatusServiceUnavailable,
	herald.EINTERNAL:         http.StatusInternalServerError,
}

// errorBody is the JSON shape of every error response.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// renderError writes err as {"error":{"code","message"[,"field"]}}. Errors
// that are not *herald.Error are internal: the caller sees "Internal error."
// and the request id, the log gets the details.
func (s *server) renderError(w http.ResponseWriter, r *http.Request, err error) {
	var oe *oauthError
	if errors.As(err, &oe) {
		writeOAuthError(w, r, oe)
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away; nobody reads this answer and it is no bug.
		if info := reqInfoFrom(r.Context()); info != nil {
			info.err = err
		}
		w.WriteHeader(499) // nginx's "client closed request", for the log and metrics
		return
	}
	code := herald.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	body := errorBody{Error: errorDetail{Code: code, Message: herald.ErrorMessage(err)}}
	var he *herald.Error
	if errors.As(err, &he) {
		body.Error.Field = he.Field
		if he.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((he.RetryAfter+time.Second-1)/time.Second)))
		}
	}
	if status == http.StatusInternalServerError {
		// Also *herald.Error values with EINTERNAL: their message may be
		// user-safe, but a 500 is a bug or an outage to look into.
		body.Error.Code = herald.EINTERNAL
		body.Error.Message = "Internal error. Quote request id " + w.Header().Get("X-Request-Id") + " when reporting it."
		s.log.ErrorContext(r.Context(), "internal error",
			"request_id", w.Header().Get("X-Request-Id"), "method", r.Method, "path", herald.LogPath(r.URL.Path), "err", err)
	}
	if info := reqInfoFrom(r.Context()); info != nil {
		info.err = err
	}
	_ = writeJSON(w, status, body)
}

// writeJSON writes v as the JSON response body with status. Encoding
// happens before the header is written, so a value that cannot be encoded
// becomes a 500 and not a truncated body.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
	return nil
}

package herald

import (
	"errors"
	"fmt"
	"time"
)

// Application error codes. Every error a caller can act on carries one of
// these; anything else is an internal error and is rendered as such.
const (
	EINVALID       = "invalid"       // the request is malformed or a field is wrong (400)
	EUNAUTHORIZED  = "unauthorized"  // no, expired or forged credentials (401)
	EFORBIDDEN     = "forbidden"     // authenticated, but the role does not allow it (403)
	ENOTFOUND      = "not_found"     // the named thing does not exist (404)
	ECONFLICT      = "conflict"      // the name is taken, or the state forbids it (409)
	ETOOLARGE      = "too_large"     // the request body is over its limit (413)
	EUNPROCESSABLE = "unprocessable" // well-formed, but cannot be done as things stand (422)
	ERATELIMITED   = "rate_limited"  // too many requests of a kind; retry after Error.RetryAfter (429)
	EUNAVAILABLE   = "unavailable"   // a dependency (the database) is down; retry later (503)
	EINTERNAL      = "internal"      // a bug or an unexpected failure (500)
)

// Error is Herald's application error: a code from the list above and a
// message that is safe to show to the caller and tells them what to fix.
// The message may quote the request, so it goes to the caller and not into
// logs: an Error logs as its code and field (LogValue).
type Error struct {
	Code    string
	Message string
	// Field names the request field at fault, when there is one
	// ("url", "triggers[1].eventSubtype").
	Field string
	// UnknownField is true when Field is a name the request used that
	// Herald does not know (an unknown JSON field or query parameter): it
	// came from the request, so logs leave it out (see LogValue).
	UnknownField bool
	// RetryAfter, when not zero, is how long the caller should wait
	// before trying again (ERATELIMITED). The HTTP answer says it in a
	// Retry-After header.
	RetryAfter time.Duration
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("herald error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldErrorf returns an EINVALID *Error about one field. The message should
// say what is wrong and, where it helps, what would be right.
func FieldErrorf(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the *Error in err's chain, "" for a nil
// error and EINTERNAL for any other error.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-safe message of the *Error in err's chain,
// or "Internal error." for any other error, whose text may leak internals.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

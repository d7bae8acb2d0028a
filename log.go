package herald

import (
	"log/slog"
	"strings"
	"unicode/utf8"
)

// What Herald's logs may say. Logs take ids, names, codes and counts, never
// values from request bodies or events: those can be health data (a
// rejected occurredAt may hold a patient's name), and logs are kept longer,
// copied further and read by more people than the database.

// LogValue implements slog.LogValuer: in a log an Error is its code and the
// field at fault, not its message, which may quote what the request
// carried; the caller still gets the message in the response. Only the
// messages of EUNAVAILABLE and EINTERNAL errors are logged: Herald writes
// them about itself ("database unavailable: connection refused."), from
// nothing a request sent.
func (e *Error) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("code", e.Code)}
	if e.Field != "" && !e.UnknownField {
		attrs = append(attrs, slog.String("field", e.Field))
	}
	if e.Code == EUNAVAILABLE || e.Code == EINTERNAL {
		attrs = append(attrs, slog.String("message", e.Message))
	}
	return slog.GroupValue(attrs...)
}

// MaxLogPath is how much of a request path a log keeps, in bytes.
const MaxLogPath = 256

// LogPath returns a request path as a log may keep it: the segment after
// "/patients/" (a patient id: health data) replaced by "{patientId}", the
// segment after "/ui/setup/" (a one-time setup token) by "{token}", and
// cut to MaxLogPath bytes, so that a client cannot write megabytes into the
// log with one request.
func LogPath(p string) string {
	if rest, ok := strings.CutPrefix(p, "/ui/setup/"); ok {
		end := strings.IndexByte(rest, '/')
		if end < 0 {
			end = len(rest)
		}
		p = "/ui/setup/{token}" + rest[end:]
	}
	if i := strings.Index(p, "/patients/"); i >= 0 {
		rest := p[i+len("/patients/"):]
		end := strings.IndexByte(rest, '/')
		if end < 0 {
			end = len(rest)
		}
		p = p[:i] + "/patients/{patientId}" + LogPath(rest[end:])
	}
	if len(p) <= MaxLogPath {
		return p
	}
	cut := MaxLogPath
	for cut > 0 && !utf8.RuneStart(p[cut]) {
		cut--
	}
	return p[:cut] + "..."
}

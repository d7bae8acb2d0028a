package herald_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/heraldhooks/herald"
)

// A request path in a log keeps no patient id and no more than
// MaxLogPath bytes.
func TestLogPath(t *testing.T) {
	long := "/v1/" + strings.Repeat("é", herald.MaxLogPath) // two bytes a rune
	for _, tc := range []struct{ in, want string }{
		{"/v1/tenants/acme", "/v1/tenants/acme"},
		{"/v1/tenants/acme/instances/live/patients/49ec-jane/purge", "/v1/tenants/acme/instances/live/patients/{patientId}/purge"},
		{"/v1/x/patients/p1", "/v1/x/patients/{patientId}"},
		{"/a/patients/p1/b/patients/p2", "/a/patients/{patientId}/b/patients/{patientId}"},
		{long, long[:herald.MaxLogPath] + "..."},
		{long[:1+herald.MaxLogPath], long[:herald.MaxLogPath] + "..."}, // cut before the split rune
	} {
		got := herald.LogPath(tc.in)
		if got != tc.want {
			t.Errorf("LogPath(%.40q...) = %.60q..., want %.60q...", tc.in, got, tc.want)
		}
		if len(got) > herald.MaxLogPath+3 || !strings.HasPrefix(tc.want, strings.TrimSuffix(got, "...")) {
			t.Errorf("LogPath(%.40q) is %d bytes", tc.in, len(got))
		}
	}
}

// An error logs as its code and field; only Herald's own messages
// (unavailable, internal) are logged, never one that may quote a request.
func TestErrorLogValue(t *testing.T) {
	for _, tc := range []struct {
		err  *herald.Error
		want string
	}{
		{herald.FieldErrorf("occurredAt", "occurredAt %q is not a time", "Jane Doe"), `err.code=invalid err.field=occurredAt`},
		{&herald.Error{Code: herald.EINVALID, Field: "patientName", UnknownField: true, Message: "Unknown field patientName"}, `err.code=invalid`},
		{herald.Errorf(herald.EUNAVAILABLE, "database unavailable: connection refused."), `err.code=unavailable err.message="database unavailable: connection refused."`},
		{herald.Errorf(herald.ENOTFOUND, "patient %q not found", "Jane Doe"), `err.code=not_found`},
	} {
		var buf bytes.Buffer
		slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey {
				return slog.Attr{}
			}
			return a
		}})).Info("", "err", tc.err)
		if got := strings.TrimSpace(buf.String()); got != tc.want {
			t.Errorf("logged %s, want %s", got, tc.want)
		}
	}
	// Errors that are not Herald's render as internal, without their text.
	err := bytes.ErrTooLarge
	if herald.ErrorCode(err) != herald.EINTERNAL || herald.ErrorMessage(err) != "Internal error." || herald.ErrorCode(nil) != "" || herald.ErrorMessage(nil) != "" {
		t.Errorf("ErrorCode/ErrorMessage of a foreign error: %q, %q", herald.ErrorCode(err), herald.ErrorMessage(err))
	}
}

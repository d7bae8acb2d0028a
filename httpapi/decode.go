package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/heraldhooks/herald"
)

// maxBodyBytes limits request bodies other than events.
const maxBodyBytes = 1 << 20

// bodyMode says whether an endpoint needs a body.
type bodyMode int

const (
	bodyRequired bodyMode = iota // empty body is 400
	bodyOptional                 // empty body leaves v as it is
)

// checkJSONContentType returns an error unless the request says its body is
// JSON, says nothing, or says application/x-www-form-urlencoded over a body
// that is plainly JSON: that is what `curl -d '{...}'` sends, and refusing
// it would only teach people to add a header. The body is still parsed
// strictly.
func checkJSONContentType(r *http.Request, body []byte) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		return nil
	}
	if mt == "application/x-www-form-urlencoded" && looksLikeJSON(body) {
		return nil
	}
	return herald.Errorf(codeUnsupportedMediaType, "Content-Type %q is not supported here: send the body as JSON with Content-Type: application/json.", ct)
}

// looksLikeJSON reports whether b starts, after white space, with a JSON
// object or array.
func looksLikeJSON(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}

// readBody returns the request body, at most limit bytes; ETOOLARGE beyond.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, herald.Errorf(herald.ETOOLARGE, "The request body is over the limit of %s for this endpoint.", sizeText(limit))
	} else if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	return b, nil
}

// sizeText writes a byte limit the way people say it ("1 MiB").
func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// decodeJSON decodes the request body (at most 1 MiB, JSON) into v
// strictly: unknown fields, wrong types, malformed or trailing JSON are
// EINVALID errors that name the field or byte offset.
//
// The Content-Type is checked only when there is a body: an empty optional
// body is fine whatever the header says, and an empty required one is
// better reported as empty.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, mode bodyMode) error {
	b, err := readBody(w, r, maxBodyBytes)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if mode == bodyOptional {
			return nil
		}
		return herald.Errorf(herald.EINVALID, "The request body is empty; this call needs a JSON object.")
	}
	if err := checkJSONContentType(r, b); err != nil {
		return err
	}
	return unmarshalStrict(b, v, "")
}

// unmarshalStrict decodes exactly one JSON value from b into v, rejecting
// unknown fields. prefix is prepended to field names in errors
// ("events[2].").
func unmarshalStrict(b []byte, v any, prefix string) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, v, prefix)
	}
	// One value only: anything but white space after it is an error.
	if _, err := dec.Token(); err != io.EOF {
		return herald.Errorf(herald.EINVALID, "The request body must hold one JSON value, but more follows it at byte %d.", dec.InputOffset())
	}
	return nil
}

// jsonError turns an encoding/json error into an EINVALID error a person
// can act on.
func jsonError(err error, v any, prefix string) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return herald.Errorf(herald.EINVALID, "The request body is not valid JSON: %s at byte %d.", se.Error(), se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return herald.Errorf(herald.EINVALID, "The request body is not valid JSON: it ends before the JSON value is complete.")
	case errors.As(err, &te):
		want := jsonTypeName(te.Type)
		if te.Field == "" {
			return herald.Errorf(herald.EINVALID, "The request body must be a JSON %s, not %s.", want, article(te.Value))
		}
		field := prefix + te.Field
		return herald.FieldErrorf(field, "%s must be %s, not %s.", field, article(want), article(te.Value))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		msg := fmt.Sprintf("unknown field %q", prefix+name)
		if s := suggestField(name, reflect.TypeOf(v)); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		} else {
			msg += "."
		}
		return &herald.Error{Code: herald.EINVALID, Field: prefix + name, UnknownField: true, Message: msg}
	}
	return herald.Errorf(herald.EINVALID, "The request body could not be decoded: %v.", err)
}

// jsonTypeName returns the JSON type a Go type decodes from.
func jsonTypeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeOf(json.RawMessage{}) {
		return "JSON value"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return t.String()
}

func article(s string) string {
	switch {
	case s == "":
		return s
	case s == "bool":
		return "a boolean"
	case strings.ContainsRune("aeiou", rune(s[0])):
		return "an " + s
	}
	return "a " + s
}

// suggestField returns the JSON field name of t (or of a struct nested in
// it) closest to name, if one is close enough to be a likely typo.
func suggestField(name string, t reflect.Type) string {
	best, bestD := "", 3
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if tag == "-" || !f.IsExported() {
				continue
			}
			if tag == "" {
				tag = f.Name
			}
			d := editDistance(strings.ToLower(name), strings.ToLower(tag))
			if d < bestD {
				best, bestD = tag, d
			}
			walk(f.Type)
		}
	}
	if t != nil {
		walk(t)
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

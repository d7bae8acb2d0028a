package sqlstore

import (
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/heraldhooks/herald"
)

// Database URLs carry passwords, and every message that names a database
// or passes on a driver's error goes through here first: RedactDSN for the
// URL itself, redactSecrets for any text that may quote it.

// passwordParam matches the password parameters of a PostgreSQL URL's query
// (password=, sslpassword=), and the key=value form's.
var passwordParam = regexp.MustCompile(`(?i)(^|[?&\s])((?:ssl)?password)=([^&\s#]*)`)

// RedactDSN returns dsn with every password in it replaced by "xxxxx": the
// user's password in the authority of a URL, and password or sslpassword
// parameters, also when the URL is malformed, as a mistyped one is.
func RedactDSN(dsn string) string {
	if scheme, rest, ok := strings.Cut(dsn, "://"); ok {
		if user, pass, at := userinfo(rest); pass != "" {
			rest = user + ":xxxxx" + rest[at:]
		}
		dsn = scheme + "://" + rest
	}
	return passwordParam.ReplaceAllString(dsn, "${1}${2}=xxxxx")
}

// userinfo splits the user and password off the authority of rest (a URL
// after "://") and returns the index of the "@" that ends them; pass is ""
// when there is no password. The "@" is the last one before the query, so
// a password with an unescaped "@" or "/" is still found whole.
func userinfo(rest string) (user, pass string, at int) {
	end := len(rest)
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		end = i
	}
	at = strings.LastIndex(rest[:end], "@")
	if at < 0 {
		at = strings.LastIndex(rest, "@")
	}
	if at < 0 {
		return "", "", -1
	}
	user, pass, _ = strings.Cut(rest[:at], ":")
	return user, pass, at
}

// dsnSecrets returns the passwords in dsn as a message may quote them:
// as written and percent-decoded, longest first.
func dsnSecrets(dsn string) []string {
	var raw []string
	if _, rest, ok := strings.Cut(dsn, "://"); ok {
		if _, pass, _ := userinfo(rest); pass != "" {
			raw = append(raw, pass)
		}
	}
	for _, m := range passwordParam.FindAllStringSubmatch(dsn, -1) {
		if m[3] != "" {
			raw = append(raw, m[3])
		}
	}
	var out []string
	for _, s := range raw {
		out = append(out, s)
		if d, err := url.PathUnescape(s); err == nil && d != s && d != "" {
			out = append(out, d)
		}
		if d, err := url.QueryUnescape(s); err == nil && d != s && d != "" {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(out)
}

// redactSecrets replaces every secret in s by "xxxxx".
func redactSecrets(s string, secrets []string) string {
	for _, p := range secrets {
		s = strings.ReplaceAll(s, p, "xxxxx")
	}
	return s
}

// redactErr returns err, or when its text holds one of secrets, an error
// that says the same with the secrets masked and keeps its code: an
// application error's message is masked, any other error's text.
func redactErr(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	var he *herald.Error
	if errors.As(err, &he) {
		msg := redactSecrets(he.Message, secrets)
		if msg == he.Message {
			return err
		}
		return &herald.Error{Code: he.Code, Message: msg, Field: he.Field, UnknownField: he.UnknownField}
	}
	msg := err.Error()
	if red := redactSecrets(msg, secrets); red != msg {
		return &redactedError{msg: red, err: err}
	}
	return err
}

// redactedError is an error whose text had a password masked. It still
// unwraps to the original, for errors.Is and errors.As, but nothing that
// prints it shows the password.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

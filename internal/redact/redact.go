// Package redact keeps secrets out of what Kiln shows: errors, log lines and
// diagnostics. It is Kiln's one redaction helper: every engine that handles a
// sensitive value hands it to a Secrets and passes what it shows through it.
package redact

import (
	"encoding/base64"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Redacted stands for a sensitive value in errors and log lines.
const Redacted = "(sensitive value)"

// minSecretLen is the shortest value redacted: replacing every "1" or "dev" in
// a message would make it unreadable, and such values are no secret.
const minSecretLen = 4

// Secrets are the values that must not appear in an error, a log line or a
// diagnostic. The zero value holds none and still hides URL credentials.
type Secrets struct {
	values []string // longest first, so a value is replaced before any it contains
}

// Add adds values; each is also hidden quoted (API errors quote values) and in
// base64 (the form it takes inside a Kubernetes Secret).
func (s *Secrets) Add(values ...string) {
	for _, v := range values {
		if len(v) >= minSecretLen {
			q := strconv.Quote(v)
			s.values = append(s.values, v, q[1:len(q)-1], base64.StdEncoding.EncodeToString([]byte(v)))
		}
	}
	slices.SortStableFunc(s.values, func(a, b string) int { return len(b) - len(a) })
}

// urlUserinfo is the user and password of a URL ("https://user:token@host"),
// anywhere in a text: a GOPROXY list, a command line, a curl error.
var urlUserinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/?#@\s'"]+@`)

// URLCredentials returns text with the credentials of every URL in it
// replaced.
func URLCredentials(text string) string {
	return urlUserinfo.ReplaceAllString(text, "${1}"+Redacted+"@")
}

// Text returns text with every secret and URL credential replaced.
func (s Secrets) Text(text string) string {
	for _, v := range s.values {
		text = strings.ReplaceAll(text, v, Redacted)
	}
	return URLCredentials(text)
}

// Error returns err with every secret replaced in its message; errors.Is and
// errors.As still see the error it wraps.
func (s Secrets) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := s.Text(err.Error())
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

// Fields returns log fields with the secrets in their values replaced.
func (s Secrets) Fields(fields map[string]any) map[string]any {
	out := maps.Clone(fields)
	for k, v := range out {
		out[k] = s.value(v)
	}
	return out
}

// Args returns slog's key-value arguments with the secrets in their values
// replaced.
func (s Secrets) Args(args []any) []any {
	out := slices.Clone(args)
	for i := 1; i < len(out); i += 2 {
		out[i] = s.value(out[i])
	}
	return out
}

// value is v with the secrets replaced, when it is text.
func (s Secrets) value(v any) any {
	switch v := v.(type) {
	case string:
		return s.Text(v)
	case []string:
		texts := make([]string, len(v))
		for i, e := range v {
			texts[i] = s.Text(e)
		}
		return texts
	}
	return v
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

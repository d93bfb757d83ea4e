package delivery

import (
	"encoding/base64"
	"sort"
	"strconv"
	"strings"
)

// Redacted stands for a sensitive value in errors and log lines.
const Redacted = "(sensitive value)"

// minSecretLen is the shortest value redacted: replacing every "1" or "dev" in
// a message would make it unreadable, and such values are no secret.
const minSecretLen = 4

// secrets are the values that must not appear in an error, a log line or a
// diagnostic: variable values and the pull secret's credentials, also in the
// base64 form they take inside a Secret.
type secrets []string

func secretsOf(p Project, env Environment) secrets {
	var s secrets
	// A value may show as is, quoted (API errors quote values) or in base64.
	add := func(v string) {
		if len(v) >= minSecretLen {
			q := strconv.Quote(v)
			s = append(s, v, q[1:len(q)-1], base64.StdEncoding.EncodeToString([]byte(v)))
		}
	}
	for _, vars := range []map[string]string{p.Variables, env.Variables} {
		for _, v := range vars {
			add(v)
		}
	}
	if ps := env.PullSecret; ps != nil {
		add(ps.Password)
		add(ps.Username + ":" + ps.Password)
	}
	// Longest first, so a value is replaced before any value it contains.
	sort.Slice(s, func(i, j int) bool { return len(s[i]) > len(s[j]) })
	return s
}

// text returns text with every secret replaced.
func (s secrets) text(text string) string {
	for _, v := range s {
		text = strings.ReplaceAll(text, v, Redacted)
	}
	return text
}

// redact returns err with every secret replaced in its message; errors.Is and
// errors.As still see the error it wraps.
func (s secrets) redact(err error) error {
	if err == nil {
		return nil
	}
	msg := s.text(err.Error())
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

package redact

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
)

// Values, as they are, quoted or in base64, and URL credentials leave no
// trace in an error, which still unwraps; short values stay readable.
func TestSecretsError(t *testing.T) {
	var s Secrets
	s.Add("tok-123456", "line1\n\"two\"", "3")
	err := fmt.Errorf(`apply: %q, %s, replicas 3, GOPROXY=https://ci:hunter22@proxy.kiln.test/mod,direct: %w`,
		"line1\n\"two\"", base64.StdEncoding.EncodeToString([]byte("tok-123456")), fs.ErrNotExist)
	err = fmt.Errorf("value tok-123456: %w", err)
	got := s.Error(err)
	for _, secret := range []string{"tok-123456", "line1", "dG9rLTEyMzQ1Ng", "ci:hunter22", "hunter22"} {
		if strings.Contains(got.Error(), secret) {
			t.Errorf("%q left in %s", secret, got)
		}
	}
	if !strings.Contains(got.Error(), "replicas 3") || !strings.Contains(got.Error(), "https://"+Redacted+"@proxy.kiln.test/mod,direct") {
		t.Errorf("redacted: %s", got)
	}
	if !errors.Is(got, fs.ErrNotExist) {
		t.Error("the redacted error does not unwrap")
	}
	if s.Error(nil) != nil {
		t.Error("Error(nil) is not nil")
	}
	plain := errors.New("nothing secret")
	if s.Error(plain) != plain {
		t.Error("an error with nothing to hide was wrapped")
	}
}

func TestSecretsFields(t *testing.T) {
	var s Secrets
	s.Add("hunter22")
	in := map[string]any{"proxy": "https://u:p@proxy.test", "steps": []string{"write hunter22"}, "n": 3}
	got := s.Fields(in)
	if got["proxy"] != "https://"+Redacted+"@proxy.test" || got["steps"].([]string)[0] != "write "+Redacted || got["n"] != 3 {
		t.Errorf("fields: %v", got)
	}
	if in["proxy"] != "https://u:p@proxy.test" {
		t.Error("Fields changed its argument")
	}
}

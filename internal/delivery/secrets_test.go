package delivery

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kilnhq/terraform-provider-kiln/internal/kube"
	"github.com/kilnhq/terraform-provider-kiln/internal/redact"
)

// TestRedact: variable values and pull secret credentials, as they are, quoted
// or in base64, leave no trace in an error, which still unwraps.
func TestRedact(t *testing.T) {
	p := Project{Variables: map[string]string{"token": "tok-123456", "replicas": "3"}}
	env := Environment{Variables: map[string]string{"greeting": "line1\n\"two\""},
		PullSecret: &PullSecret{Username: "ci", Password: "hunter22"}}
	s := secretsOf(p, env)
	inner := &kube.ConflictError{Detail: "x"}
	err := fmt.Errorf(`apply: Invalid value: "tok-123456", %q, auth %s, %s, replicas 3: %w`, env.Variables["greeting"],
		base64.StdEncoding.EncodeToString([]byte("ci:hunter22")), base64.StdEncoding.EncodeToString([]byte("hunter22")), inner)
	got := s.Error(err)
	for _, secret := range []string{"tok-123456", "line1", "hunter22", "aHVudGVyMjI", "Y2k6aHVudGVyMjI"} {
		if strings.Contains(got.Error(), secret) {
			t.Errorf("%q left in %s", secret, got)
		}
	}
	if !strings.Contains(got.Error(), "replicas 3") || strings.Count(got.Error(), redact.Redacted) != 4 {
		t.Errorf("redacted: %s", got)
	}
	var conflict *kube.ConflictError
	if !errors.As(got, &conflict) {
		t.Error("the redacted error does not unwrap")
	}
	if s.Error(nil) != nil {
		t.Error("redact(nil) is not nil")
	}
}

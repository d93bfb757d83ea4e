package history

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kilnhq/terraform-provider-kiln/internal/kube"
)

func incompressible(n int) string {
	b := make([]byte, n*3/4)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// TestSecretsSplit: a record larger than one Secret may hold is split, read
// back whole, updated, and deleted with all its parts.
func TestSecretsSplit(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	s := &Secrets{Client: cs, Namespace: "kiln-system"}
	big := incompressible(2 << 20)
	r := &Record{Project: "shop", Env: "dev", Revision: 1, Status: StatusDeployed, Render: map[string]string{"api": big},
		Objects: []Object{{Service: "api", Ref: kube.Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: "shop-env-dev", Name: "big"}, UID: "u1"}}}
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	secs, _ := cs.CoreV1().Secrets("kiln-system").List(ctx, metav1.ListOptions{})
	if len(secs.Items) < 3 {
		t.Fatalf("%d Secrets for a 2 MiB record", len(secs.Items))
	}
	for _, sec := range secs.Items {
		if n := len(sec.Data["release"]); n > 1<<20 {
			t.Fatalf("Secret %s holds %d bytes", sec.Name, n)
		}
	}
	all, warnings, err := s.List(ctx, "shop", "dev")
	if err != nil || len(warnings) > 0 || len(all) != 1 || all[0].Render["api"] != big || all[0].Objects[0].UID != "u1" {
		t.Fatalf("List = %d records, %v, %v", len(all), warnings, err)
	}
	r.Status, r.Render = StatusSuperseded, map[string]string{"api": "small"}
	if err := s.Update(ctx, r); err != nil {
		t.Fatal(err)
	}
	if secs, _ := cs.CoreV1().Secrets("kiln-system").List(ctx, metav1.ListOptions{}); len(secs.Items) != 1 {
		t.Fatalf("%d Secrets after the record shrank", len(secs.Items))
	}
	if got, err := s.Get(ctx, "shop", "dev", 1); err != nil || got.Status != StatusSuperseded {
		t.Fatalf("Get = %v, %v", got, err)
	}
	if err := s.Delete(ctx, "shop", "dev", 1); err != nil {
		t.Fatal(err)
	}
	if secs, _ := cs.CoreV1().Secrets("kiln-system").List(ctx, metav1.ListOptions{}); len(secs.Items) != 0 {
		t.Fatalf("%d Secrets after Delete", len(secs.Items))
	}
	if err := Check(&Record{Render: map[string]string{"api": incompressible(17 << 20)}}); err == nil || !strings.Contains(err.Error(), "over the") {
		t.Fatalf("Check of a 17 MiB record: %v", err)
	}
}

// TestSecretsUnreadable: records that are corrupt, inflate without bound, or
// claim another revision than their name are skipped with a warning each; the
// good record is still read.
func TestSecretsUnreadable(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	s := &Secrets{Client: cs, Namespace: "kiln-system"}
	if err := s.Create(ctx, &Record{Project: "shop", Env: "dev", Revision: 1, Status: StatusDeployed}); err != nil {
		t.Fatal(err)
	}
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 80 {
		_, _ = zw.Write(zeros)
	}
	_ = zw.Close()
	other, _ := s.secrets(&Record{Project: "shop", Env: "dev", Revision: 7, Status: StatusDeployed})
	for rev, data := range map[int][]byte{2: []byte("not gzip"), 3: bomb.Bytes(), 4: other[0].Data["release"]} {
		sec := other[0].DeepCopy()
		sec.Name = SecretName("shop", "dev", rev)
		sec.Data["release"] = data
		if rev != 4 {
			sec.Annotations[annotationSHA256] = sha(data)
		}
		if _, err := cs.CoreV1().Secrets("kiln-system").Create(ctx, sec, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tampered := other[0].DeepCopy()
	tampered.Name = SecretName("shop", "dev", 5)
	tampered.Labels["revision"] = "5"
	tampered.Data["release"] = append([]byte(nil), tampered.Data["release"]...)
	tampered.Data["release"][len(tampered.Data["release"])-1] ^= 1
	if _, err := cs.CoreV1().Secrets("kiln-system").Create(ctx, tampered, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	all, warnings, err := s.List(ctx, "shop", "dev")
	if err != nil || len(all) != 1 || all[0].Revision != 1 {
		t.Fatalf("List = %v, %v", all, err)
	}
	joined := strings.Join(warnings, "\n")
	for _, want := range []string{".v2: unexpected EOF", ".v3: inflates past", ".v4 holds revision 7", ".v5: its parts do not match"} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings lack %q:\n%s", want, joined)
		}
	}
	if _, err := s.Get(ctx, "shop", "dev", 3); err == nil {
		t.Error("Get of the gzip bomb succeeded")
	}
}

func sha(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// KubeBed is the local Kubernetes control plane (scripts/kube-testbed.sh):
// etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok's
// simulated nodes, all on 127.0.0.1.
type KubeBed struct {
	Kubeconfig string
	Host       string
	CAFile     string
	ClientCert string // file, a client certificate in group system:masters
	ClientKey  string // file
	// DeveloperKubeconfig holds the token of a second, less privileged identity:
	// the service account developer, bound to the edit ClusterRole in
	// DeveloperNamespace only (tests bind it in more namespaces as needed).
	DeveloperKubeconfig string
	DeveloperNamespace  string
}

var (
	kubeOnce sync.Once
	kubeBed  KubeBed
	kubeErr  error
)

// Kube brings the control plane up (reusing a running one) and returns it. The
// first call on a fresh machine builds the control plane binaries, which takes
// many minutes.
func Kube(t testing.TB) KubeBed {
	t.Helper()
	kubeOnce.Do(func() {
		var out []byte
		out, kubeErr = runScript("kube-testbed.sh", 60*time.Minute)
		if kubeErr != nil {
			return
		}
		env := parseEnv(out)
		kubeBed = KubeBed{
			Kubeconfig: env["KILN_TEST_KUBECONFIG"],
			Host:       env["KILN_TEST_KUBE_HOST"],
			CAFile:     env["KILN_TEST_KUBE_CA"],
			ClientCert: env["KILN_TEST_KUBE_CLIENT_CERT"],
			ClientKey:  env["KILN_TEST_KUBE_CLIENT_KEY"],

			DeveloperKubeconfig: env["KILN_TEST_KUBE_DEVELOPER_KUBECONFIG"],
			DeveloperNamespace:  env["KILN_TEST_KUBE_DEVELOPER_NAMESPACE"],
		}
		if kubeBed.Kubeconfig == "" || kubeBed.Host == "" || kubeBed.DeveloperKubeconfig == "" {
			kubeErr = fmt.Errorf("kube-testbed.sh printed an incomplete environment:\n%s", out)
		}
	})
	if kubeErr != nil {
		t.Fatalf("kube test bed: %v", kubeErr)
	}
	return kubeBed
}

// Lock holds a lock named name on the control plane, across the processes on
// this machine that share it, until the test ends: for tests whose objects have
// fixed names (the examples'), which two CLIs' runs side by side would share.
func (b KubeBed) Lock(t testing.TB, name string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(filepath.Dir(b.Kubeconfig), name+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("kube test bed lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		t.Fatalf("kube test bed lock %s: %v", f.Name(), err)
	}
	t.Cleanup(func() { _ = f.Close() }) // closing the file releases the lock
}

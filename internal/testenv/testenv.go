// Package testenv starts the real test infrastructure the acceptance tests use
// (scripts/testbed.sh) and tells the tests where it is.
package testenv

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// LibvirtBed is the local libvirt test bed.
type LibvirtBed struct {
	URI        string
	Pool       string
	BaseVolume string // a Debian 12 image with cloud-init, in Pool
	BaseImage  string // the same image as a file on this machine
	// DomainType is the libvirt domain type guests boot with here ("kvm" or
	// "qemu"), chosen by scripts/domain-type.sh from what boots.
	DomainType string
}

var (
	libvirtOnce sync.Once
	libvirtBed  LibvirtBed
	libvirtErr  error
)

// Libvirt brings the libvirt test bed up (a no-op when it is up already) and
// returns it. The first call on a fresh machine installs packages and builds the
// guest image, which takes minutes.
func Libvirt(t testing.TB) LibvirtBed {
	t.Helper()
	bed, err := LibvirtEnv()
	if err != nil {
		t.Fatalf("libvirt test bed: %v", err)
	}
	return bed
}

// LibvirtEnv is Libvirt for callers outside a test, such as a TestMain that
// starts a guest in the background.
func LibvirtEnv() (LibvirtBed, error) {
	libvirtOnce.Do(func() {
		var out []byte
		out, libvirtErr = runScript("testbed.sh", 45*time.Minute)
		if libvirtErr != nil {
			return
		}
		env := parseEnv(out)
		libvirtBed = LibvirtBed{
			URI:        env["KILN_TEST_LIBVIRT_URI"],
			Pool:       env["KILN_TEST_POOL"],
			BaseVolume: env["KILN_TEST_BASE_VOLUME"],
			BaseImage:  env["KILN_TEST_BASE_IMAGE"],
			DomainType: env["KILN_TEST_DOMAIN_TYPE"],
		}
		if libvirtBed.URI == "" || libvirtBed.Pool == "" || libvirtBed.BaseVolume == "" || libvirtBed.DomainType == "" {
			libvirtErr = fmt.Errorf("testbed.sh printed an incomplete environment:\n%s", out)
		}
	})
	return libvirtBed, libvirtErr
}

// RemoveGuestAtCleanup removes the guest name and its volumes when the test
// ends, if they are still there: a test whose last configuration fails cannot
// destroy with it, and would otherwise leave its VM running.
func (b LibvirtBed) RemoveGuestAtCleanup(t testing.TB, name string) {
	t.Helper()
	t.Cleanup(func() {
		if _, err := b.virsh("dominfo", name); err == nil {
			t.Logf("removing guest %s, left behind by the test", name)
		}
		b.removeGuest(name, []string{name + "-root.qcow2", name + "-cidata.iso"})
	})
}

// RepoRoot is the directory holding the module's go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "scripts")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no repository root above the working directory")
		}
		dir = parent
	}
}

// RestartLibvirtd stops libvirtd and starts it again through the test bed script,
// as an operator restarting the daemon would; running guests survive it, and so
// do the tests of other processes: Kiln's libvirt client rides through it.
func RestartLibvirtd() error {
	if err := exec.Command("pkill", "-x", "libvirtd").Run(); err != nil {
		return fmt.Errorf("stop libvirtd: %w", err)
	}
	for range 50 {
		if exec.Command("pgrep", "-x", "libvirtd").Run() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, err := runScript("testbed.sh", 5*time.Minute)
	return err
}

func runScript(name string, timeout time.Duration) ([]byte, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", name))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("scripts/%s: %w\n%s", name, err, stderr.String())
	}
	return stdout.Bytes(), nil
}

func parseEnv(out []byte) map[string]string {
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	return env
}

package libvirt

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/libvirttest"
)

// fakeDaemon stands in for libvirtd at the client's dial seam: it refuses the
// first dials, as a daemon still restarting does, then answers with go-libvirt's
// mock server; kill cuts the current connection as a daemon exiting does.
type fakeDaemon struct {
	refuse int // dials refused before one is answered
	dials  int
	conn   net.Conn // the client's end of the current connection
}

func (d *fakeDaemon) dial() (*golibvirt.Libvirt, error) {
	d.dials++
	if d.dials <= d.refuse {
		return nil, &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	l := golibvirt.NewWithDialer(d)
	if err := l.ConnectToURI(golibvirt.QEMUSystem); err != nil {
		return nil, err
	}
	return l, nil
}

// Dial makes d the go-libvirt dialer, so the test holds the connection's end.
func (d *fakeDaemon) Dial() (net.Conn, error) {
	conn, err := libvirttest.New().Dial()
	d.conn = conn
	return conn, err
}

func (d *fakeDaemon) kill() { _ = d.conn.Close() }

func fakeClient(d *fakeDaemon, redial time.Duration) *Client {
	c := NewClient("qemu:///system")
	c.dialOnce, c.redialTimeout = d.dial, redial
	return c
}

func TestClientWaitsForDaemon(t *testing.T) {
	d := &fakeDaemon{refuse: 2}
	c := fakeClient(d, 30*time.Second)
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d.dials != 3 {
		t.Errorf("dials = %d, want 3 (two refused, one answered)", d.dials)
	}
}

func TestClientGivesUpOnAbsentDaemon(t *testing.T) {
	d := &fakeDaemon{refuse: 1 << 30}
	c := fakeClient(d, time.Second)
	start := time.Now()
	err := c.Ping(context.Background())
	if err == nil || !strings.Contains(err.Error(), "is libvirtd running?") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v, want a failed connect naming the refusal", err)
	}
	if waited := time.Since(start); waited < time.Second || waited > 5*time.Second {
		t.Errorf("gave up after %s, want the redial timeout (1s)", waited)
	}
}

func TestClientDoesNotRetryOtherDialErrors(t *testing.T) {
	c := NewClient("qemu:///system")
	dials := 0
	c.dialOnce = func() (*golibvirt.Libvirt, error) {
		dials++
		return nil, golibvirt.Error{Code: uint32(golibvirt.ErrAuthFailed), Message: "authentication failed"}
	}
	if err := c.Ping(context.Background()); err == nil {
		t.Fatal("Ping succeeded against a daemon refusing authentication")
	}
	if dials != 1 {
		t.Errorf("dials = %d, want 1: only an absent daemon is waited for", dials)
	}
}

func TestClientRepeatsReadCutByRestart(t *testing.T) {
	d := &fakeDaemon{}
	c := fakeClient(d, 30*time.Second)
	calls := 0
	err := c.read(context.Background(), func(conn *golibvirt.Libvirt) error {
		calls++
		if calls == 1 {
			d.refuse = d.dials + 1 // the daemon is away for one dial
			d.kill()
		}
		_, err := conn.ConnectGetLibVersion()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 || d.dials != 3 {
		t.Errorf("calls = %d, dials = %d; want the read repeated once on a connection dialled after one refusal", calls, d.dials)
	}
}

func TestClientDoesNotRepeatChangeCutByRestart(t *testing.T) {
	d := &fakeDaemon{}
	c := fakeClient(d, 30*time.Second)
	calls := 0
	err := c.change(context.Background(), func(conn *golibvirt.Libvirt) error {
		calls++
		d.kill()
		_, err := conn.ConnectGetLibVersion()
		return err
	})
	if !disconnected(err) {
		t.Fatalf("err = %v, want the lost connection reported", err)
	}
	if calls != 1 {
		t.Errorf("calls = %d, want 1: a change may have taken effect", calls)
	}
	// The next call redials.
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d.dials != 2 {
		t.Errorf("dials = %d, want 2", d.dials)
	}
}

func TestDisconnected(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{golibvirt.ErrInterrupted, true},
		{syscall.EINVAL, true},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ENOENT)}, true},
		{errors.New("failed to connect to libvirt: " + golibvirt.ErrInterrupted.Error()), false},
		{golibvirt.Error{Code: uint32(golibvirt.ErrNoDomain), Message: "no domain"}, false},
	} {
		if got := disconnected(tc.err); got != tc.want {
			t.Errorf("disconnected(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestClientLocal(t *testing.T) {
	for uri, want := range map[string]bool{
		"qemu:///system": true, "qemu+unix:///system?socket=/run/x": true, "qemu+ssh://localhost/system": true,
		"qemu+ssh://builder@kvm1.example.com/system": false, "qemu+tcp://10.0.0.5/system": false, "qemu://kvm1/system": false,
	} {
		if got := NewClient(uri).Local(); got != want {
			t.Errorf("Local(%q) = %v, want %v", uri, got, want)
		}
	}
}

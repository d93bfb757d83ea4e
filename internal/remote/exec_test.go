package remote

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// execServer is an SSH server on 127.0.0.1 that runs exec requests with sh on
// this machine, for the executor's tests.
type execServer struct {
	addr    string
	hostKey HostKey
	client  ssh.Signer
}

func newExecServer(t *testing.T) *execServer {
	t.Helper()
	hostKey, err := NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	_, clientPriv, _ := ed25519.GenerateKey(rand.Reader)
	client, _ := ssh.NewSignerFromKey(clientPriv)
	return &execServer{hostKey: hostKey, client: client}
}

// serve accepts connections on ln until the test ends.
func (s *execServer) serve(t *testing.T, ln net.Listener) {
	signer, err := ssh.ParsePrivateKey([]byte(s.hostKey.PrivatePEM))
	if err != nil {
		t.Error(err)
		return
	}
	config := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if string(key.Marshal()) == string(s.client.PublicKey().Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	config.AddHostKey(signer)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go serveExec(conn, config)
		}
	}()
}

func startExecServer(t *testing.T) *execServer {
	t.Helper()
	s := newExecServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.serve(t, ln)
	return s
}

func serveExec(conn net.Conn, config *ssh.ServerConfig) {
	defer conn.Close()
	_, chans, reqs, err := ssh.NewServerConn(conn, config)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		ch, requests, err := nc.Accept()
		if err != nil {
			continue
		}
		go func() {
			defer ch.Close()
			for req := range requests {
				if req.Type != "exec" {
					_ = req.Reply(false, nil)
					continue
				}
				_ = req.Reply(true, nil)
				n := binary.BigEndian.Uint32(req.Payload)
				cmd := exec.Command("sh", "-c", string(req.Payload[4:4+n]))
				cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
				status := 0
				if err := cmd.Run(); err != nil {
					var ee *exec.ExitError
					if errors.As(err, &ee) {
						status = ee.ExitCode()
					} else {
						status = 127
					}
				}
				_, _ = ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, uint32(status)))
				return
			}
		}()
	}
}

func (s *execServer) target(t *testing.T) Target {
	pub, err := ParsePublicKey(s.hostKey.Public)
	if err != nil {
		t.Fatal(err)
	}
	return Target{Addr: s.addr, User: "root", Auth: []ssh.AuthMethod{SignerAuth(s.client)}, HostKey: PinHostKey(pub)}
}

func TestRunAndRunInput(t *testing.T) {
	srv := startExecServer(t)
	ctx := context.Background()
	c, err := Dial(ctx, srv.target(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, err := c.Run(ctx, "greet", "echo hello")
	if err != nil || out != "hello\n" {
		t.Fatalf("Run = %q, %v", out, err)
	}
	out, err = c.RunInput(ctx, "checksum", "wc -c", strings.NewReader(strings.Repeat("x", 100000)))
	if err != nil || strings.TrimSpace(out) != "100000" {
		t.Fatalf("RunInput = %q, %v", out, err)
	}
}

func TestRunErrorNamesHostStepCommandExitAndStderr(t *testing.T) {
	srv := startExecServer(t)
	ctx := context.Background()
	c, err := Dial(ctx, srv.target(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Run(ctx, "install go", "echo no space left on device >&2; exit 3")
	var se *StepError
	if !errors.As(err, &se) || se.ExitCode != 3 {
		t.Fatalf("err = %v, want a StepError with exit code 3", err)
	}
	for _, want := range []string{srv.addr, `step "install go"`, "exit 3", "exited 3", "no space left on device"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

// A step error shows neither URL credentials nor the target's secrets, in
// the command or in what the command printed.
func TestRunErrorHidesSecrets(t *testing.T) {
	srv := startExecServer(t)
	ctx := context.Background()
	target := srv.target(t)
	target.Secrets.Add("hunter22")
	c, err := Dial(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Run(ctx, "write go.env", BashCommand(`echo "cannot write $1 ($2)" >&2; exit 1`,
		"GOPROXY=https://ci:tok-5678@proxy.kiln.test", "GOFLAGS=-token=hunter22"))
	if err == nil {
		t.Fatal("the step did not fail")
	}
	for _, secret := range []string{"tok-5678", "ci:", "hunter22"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%q left in %s", secret, err)
		}
	}
	if !strings.Contains(err.Error(), `step "write go.env"`) || !strings.Contains(err.Error(), "proxy.kiln.test") {
		t.Errorf("error %q no longer names the step and the proxy", err)
	}
}

func TestRunStopsAtContextEnd(t *testing.T) {
	srv := startExecServer(t)
	c, err := Dial(context.Background(), srv.target(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = c.Run(ctx, "hang", "sleep 30")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
}

func TestDialRefusesAChangedHostKey(t *testing.T) {
	srv := startExecServer(t)
	other, _ := NewHostKey()
	pub, _ := ParsePublicKey(other.Public)
	target := srv.target(t)
	target.HostKey = PinHostKey(pub)
	target.ConnectTimeout = 5 * time.Second // not retried: a wrong key is final
	start := time.Now()
	_, err := Dial(context.Background(), target)
	var hk *HostKeyError
	if !errors.As(err, &hk) || !strings.Contains(err.Error(), "changed") {
		t.Fatalf("err = %v, want a changed host key error", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatal("a host key mismatch was retried")
	}
}

func TestKnownHosts(t *testing.T) {
	srv := startExecServer(t)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	target := srv.target(t)
	if target.HostKey, _ = KnownHosts(empty); true {
		_, err := Dial(context.Background(), target)
		var hk *HostKeyError
		if !errors.As(err, &hk) || !strings.Contains(err.Error(), "unknown") {
			t.Fatalf("err = %v, want an unknown host key error", err)
		}
	}
	listed := filepath.Join(dir, "known")
	host, port, _ := net.SplitHostPort(srv.addr)
	line := "[" + host + "]:" + port + " " + srv.hostKey.Public + "\n"
	if err := os.WriteFile(listed, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	check, err := KnownHosts(listed)
	if err != nil {
		t.Fatal(err)
	}
	target.HostKey = check
	c, err := Dial(context.Background(), target)
	if err != nil {
		t.Fatalf("Dial with the key in known_hosts: %v", err)
	}
	c.Close()
}

// A host that is still booting refuses connections; Dial retries within
// ConnectTimeout.
func TestDialRetriesUntilTheHostAnswers(t *testing.T) {
	srv := newExecServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.addr = ln.Addr().String()
	ln.Close()
	go func() {
		time.Sleep(1500 * time.Millisecond)
		if ln, err := net.Listen("tcp", srv.addr); err == nil {
			srv.serve(t, ln)
		}
	}()
	target := srv.target(t)
	target.ConnectTimeout = 20 * time.Second
	c, err := Dial(context.Background(), target)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	c.Close()
}

// TestRunEndsWhenTheServerStopsAnswering freezes the network between client and
// server, as a rebooting guest behind QEMU's user-mode network does: the
// connection stays open but nothing comes back. The running command must fail
// with the connection named lost rather than wait forever.
func TestRunEndsWhenTheServerStopsAnswering(t *testing.T) {
	defer func(interval, timeout time.Duration) { keepAliveInterval, keepAliveTimeout = interval, timeout }(keepAliveInterval, keepAliveTimeout)
	keepAliveInterval, keepAliveTimeout = 100*time.Millisecond, 300*time.Millisecond
	s := startExecServer(t)
	relay, freeze := startFreezableRelay(t, s.addr)
	target := s.target(t)
	target.Addr = relay
	c, err := Dial(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		time.Sleep(300 * time.Millisecond)
		freeze()
	}()
	_, err = c.Run(context.Background(), "long step", "sleep 30")
	var se *StepError
	if !errors.As(err, &se) || se.ExitCode != -1 || !strings.Contains(err.Error(), "connection lost") {
		t.Fatalf("got %v, want a StepError saying the connection was lost", err)
	}
}

// startFreezableRelay forwards TCP connections to addr until freeze is called;
// from then on it keeps them open and passes nothing.
func startFreezableRelay(t *testing.T, addr string) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	frozen, done := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			select {
			case <-frozen:
				<-done
				return
			default:
			}
			if err != nil {
				return
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
	}
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", addr)
			if err != nil {
				in.Close()
				continue
			}
			go pipe(out, in)
			go pipe(in, out)
		}
	}()
	var once sync.Once
	return ln.Addr().String(), func() { once.Do(func() { close(frozen) }) }
}

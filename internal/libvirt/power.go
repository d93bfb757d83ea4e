package libvirt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"golang.org/x/crypto/ssh"

	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
	"github.com/kilnhq/terraform-provider-kiln/internal/wait"
)

// ShutdownGrace is how long a guest is given to power off after an ACPI shutdown
// request before it is forced off.
const ShutdownGrace = 90 * time.Second

// start boots the domain (or resumes it when paused) and waits for SSH,
// following its serial console, then takes the SSH host key off the seed
// volume. A boot it starts must show kernel output within vm.BootTimeout (when
// set), or the domain is forced off and a *BootError returned.
func (c *Client) start(ctx context.Context, dom golibvirt.Domain, vm VM) error {
	var state int32
	err := c.read(ctx, func(conn *golibvirt.Libvirt) error {
		var err error
		state, _, err = conn.DomainGetState(dom, 0)
		return err
	})
	if err != nil {
		return fmt.Errorf("read state of domain %q: %w", vm.Name, err)
	}
	c.log(ctx, "starting domain", "vm", vm.Name)
	var con *console
	bootTimeout := time.Duration(0) // only a boot started here can be timed
	switch golibvirt.DomainState(state) {
	case golibvirt.DomainRunning:
		con = c.followConsole(ctx, dom)
	case golibvirt.DomainPaused:
		con = c.followConsole(ctx, dom)
		if err := c.change(ctx, func(conn *golibvirt.Libvirt) error { return conn.DomainResume(dom) }); err != nil {
			con.Close()
			return fmt.Errorf("resume domain %q: %w", vm.Name, err)
		}
	default:
		// Started paused, so the console is attached before the firmware prints:
		// QEMU drops serial output nobody is attached to.
		err := c.change(ctx, func(conn *golibvirt.Libvirt) error {
			_, err := conn.DomainCreateWithFlags(dom, uint32(golibvirt.DomainStartPaused))
			return err
		})
		if err != nil {
			return fmt.Errorf("start domain %q: %w", vm.Name, err)
		}
		con = c.followConsole(ctx, dom)
		if err := c.change(ctx, func(conn *golibvirt.Libvirt) error { return conn.DomainResume(dom) }); err != nil {
			con.Close()
			return fmt.Errorf("resume domain %q after attaching its console: %w", vm.Name, err)
		}
		bootTimeout = vm.BootTimeout
	}
	defer con.Close()
	if con.err != nil {
		c.log(ctx, "not following the serial console: boot progress is not checked", "vm", vm.Name, "error", con.err.Error())
		bootTimeout = 0
	}
	err = c.waitForSSH(ctx, dom, vm, con, bootTimeout)
	var bootErr *BootError
	if errors.As(err, &bootErr) {
		// The guest cannot get anywhere; stopped, it no longer holds a CPU until
		// it is replaced or destroyed.
		c.log(ctx, "guest did not boot; forcing it off", "vm", vm.Name, "seen", bootErr.Seen.String())
		if derr := c.destroy(ctx, dom); derr != nil {
			return fmt.Errorf("%w (forcing it off failed too: %v)", err, derr)
		}
	}
	if err != nil {
		return err
	}
	return c.scrubSeed(ctx, vm)
}

// waitForSSH waits until the guest's SSH server proves its identity with the
// host key Kiln generated for it. With bootTimeout set, it gives up then with a
// *BootError unless the console has shown kernel output.
func (c *Client) waitForSSH(ctx context.Context, dom golibvirt.Domain, vm VM, con *console, bootTimeout time.Duration) error {
	key, err := remote.ParsePublicKey(vm.SSHHostKey)
	if err != nil {
		return fmt.Errorf("domain %q: %w", vm.Name, err)
	}
	if bootTimeout > 0 {
		// A first wait as long as the boot timeout: the SSH probes' connections
		// end with it too, so a guest that never booted holds nothing past it.
		bootCtx, cancel := context.WithTimeout(ctx, bootTimeout)
		err := c.reachSSH(bootCtx, dom, vm, con, key)
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		switch seen := con.log.Phase(); {
		case con.ended():
			// The console went with its connection (libvirtd restarted): what
			// it did not show proves nothing.
			c.log(ctx, "the serial console closed; boot progress is not checked", "vm", vm.Name, "seen", seen.String())
		case seen < BootKernel:
			return &BootError{Domain: vm.Name, Type: vm.Type, Waited: bootTimeout, Seen: seen, Tail: con.log.Tail()}
		default:
			c.log(ctx, "the kernel is up; still waiting for SSH", "vm", vm.Name)
		}
	}
	return c.reachSSH(ctx, dom, vm, con, key)
}

func (c *Client) reachSSH(ctx context.Context, dom golibvirt.Domain, vm VM, con *console, key ssh.PublicKey) error {
	host, port := "", 0
	err := wait.Until(ctx, fmt.Sprintf("an address for domain %q", vm.Name), wait.Default, func(context.Context) (bool, error) {
		err := c.read(ctx, func(conn *golibvirt.Libvirt) error {
			state, _, err := conn.DomainGetState(dom, 0)
			if err != nil {
				return fmt.Errorf("read state of domain %q: %w", vm.Name, err)
			}
			if golibvirt.DomainState(state) != golibvirt.DomainRunning {
				return fmt.Errorf("domain %q stopped while booting (state %d); %s", vm.Name, state, con.describe(vm.Name))
			}
			addrs, err := addresses(conn, dom, true)
			host, port = sshEndpoint(vm, addrs)
			return err
		})
		return host != "", err
	})
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	c.log(ctx, "waiting for SSH", "vm", vm.Name, "address", addr)
	if err := remote.WaitForHostKey(ctx, addr, key); err != nil {
		return fmt.Errorf("domain %q: %w; %s", vm.Name, err, con.describe(vm.Name))
	}
	c.log(ctx, "SSH answers with the pinned host key", "vm", vm.Name, "address", addr)
	return nil
}

func (c *Client) isActive(ctx context.Context, dom golibvirt.Domain, name string) (bool, error) {
	var active int32
	err := c.read(ctx, func(conn *golibvirt.Libvirt) error {
		var err error
		active, err = conn.DomainIsActive(dom)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("read state of domain %q: %w", name, err)
	}
	return active == 1, nil
}

// shutdown asks the guest to power off and forces it off after ShutdownGrace.
func (c *Client) shutdown(ctx context.Context, dom golibvirt.Domain, name string) error {
	c.log(ctx, "shutting down domain", "vm", name)
	err := c.change(ctx, func(conn *golibvirt.Libvirt) error { return conn.DomainShutdown(dom) })
	if err != nil && !isErrorCode(err, golibvirt.ErrOperationInvalid) {
		return fmt.Errorf("shut down domain %q: %w", name, err)
	}
	graceCtx, cancel := context.WithTimeout(ctx, ShutdownGrace)
	defer cancel()
	err = wait.Until(graceCtx, fmt.Sprintf("domain %q to power off", name), wait.Default, func(ctx context.Context) (bool, error) {
		active, err := c.isActive(ctx, dom, name)
		return !active, err
	})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return err
	}
	c.log(ctx, "guest did not power off in time; forcing it off", "vm", name)
	if err := c.destroy(ctx, dom); err != nil {
		return fmt.Errorf("force off domain %q: %w", name, err)
	}
	return nil
}

// destroy forces the domain off; one already off is not an error.
func (c *Client) destroy(ctx context.Context, dom golibvirt.Domain) error {
	err := c.change(ctx, func(conn *golibvirt.Libvirt) error { return conn.DomainDestroy(dom) })
	if isErrorCode(err, golibvirt.ErrOperationInvalid) {
		return nil
	}
	return err
}

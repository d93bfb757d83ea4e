package vsphere

import (
	"context"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"

	"github.com/kilnhq/terraform-provider-kiln/internal/wait"
)

func (c *Client) waitForIP(ctx context.Context, vm *object.VirtualMachine, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	c.log(ctx, "waiting for a guest IP address", "vm", vm.InventoryPath)
	return wait.Until(ctx, fmt.Sprintf("a guest IP address of VM %q (within %s; is VMware Tools running in the guest?)", vm.InventoryPath, limit), wait.Default,
		func(ctx context.Context) (bool, error) {
			var m mo.VirtualMachine
			if err := vm.Properties(ctx, vm.Reference(), []string{"guest.ipAddress", "guest.net"}, &m); err != nil {
				return false, wait.Transient(err)
			}
			return len(guestIPs(m)) > 0, nil
		})
}

// guestIPs lists the guest's addresses, leaving out link-local ones.
func guestIPs(m mo.VirtualMachine) []string {
	var out []string
	add := func(s string) {
		ip := net.ParseIP(s)
		if ip == nil || ip.IsLinkLocalUnicast() || ip.IsLoopback() || slices.Contains(out, ip.String()) {
			return
		}
		out = append(out, ip.String())
	}
	if m.Guest == nil {
		return nil
	}
	if m.Guest.IpAddress != "" {
		add(m.Guest.IpAddress)
	}
	for _, nic := range m.Guest.Net {
		for _, a := range nic.IpAddress {
			add(a)
		}
	}
	return out
}

package vsphere

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"
)

// powerOff asks VMware Tools for a guest shutdown when they run, and powers the
// VM off when they do not or the guest takes longer than ShutdownGrace.
func (c *Client) powerOff(ctx context.Context, vm *object.VirtualMachine, tools bool) error {
	name := vm.InventoryPath
	if tools {
		c.log(ctx, "shutting guest down", "vm", name)
		if err := vm.ShutdownGuest(ctx); err == nil {
			graceCtx, cancel := context.WithTimeout(ctx, ShutdownGrace)
			err = vm.WaitForPowerState(graceCtx, types.VirtualMachinePowerStatePoweredOff)
			cancel()
			if err == nil {
				return nil
			}
		}
	}
	c.log(ctx, "powering VM off", "vm", name)
	task, err := vm.PowerOff(ctx)
	if err != nil {
		return fmt.Errorf("power off VM %q: %w", name, err)
	}
	if _, err := task.WaitForResult(ctx); err != nil && !fault.Is(err, &types.InvalidPowerState{}) {
		return fmt.Errorf("power off VM %q: %w", name, err)
	}
	return nil
}

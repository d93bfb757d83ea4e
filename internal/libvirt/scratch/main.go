package main

import (
	"context"
	"fmt"
	"time"

	"github.com/kilnhq/terraform-provider-kiln/internal/libvirt"
)

func main() {
	c := libvirt.NewClient("qemu:///system")
	c.Log = func(_ context.Context, msg string, f map[string]any) { fmt.Println(msg, f) }
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	vm, err := c.CreateVM(ctx, libvirt.VM{Name: "scratch", Pool: "kiln-test", BaseVolume: "scratch-base.qcow2", VCPU: 1, MemoryMiB: 256, DiskBytes: 2 * libvirt.GiB,
		Interfaces: []libvirt.Interface{{UserMode: true}}})
	fmt.Printf("create: %+v %v\n", vm, err)
	vm.MemoryMiB = 300
	vm.DiskBytes = 3 * libvirt.GiB
	vm2, err := c.UpdateVM(ctx, vm)
	fmt.Printf("update: mem=%d disk=%d %v\n", vm2.MemoryMiB, vm2.DiskBytes, err)
	fmt.Println("delete:", c.DeleteVM(ctx, vm2))
}

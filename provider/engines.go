package provider

import (
	"github.com/hashicorp/terraform-plugin-framework/diag"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery"
	"github.com/kilnhq/terraform-provider-kiln/internal/libvirt"
	"github.com/kilnhq/terraform-provider-kiln/internal/oci"
	"github.com/kilnhq/terraform-provider-kiln/internal/vsphere"
)

// engineBlock is an engine the provider configures from one of its blocks, and
// the error a resource gives when that block is missing.
type engineBlock[E any] struct {
	summary, detail string
	pick            func(*clients) *E
}

var (
	libvirtBlock = engineBlock[libvirt.Client]{
		summary: "Missing libvirt configuration",
		detail: "kiln_libvirt_vm needs the provider's libvirt block: add `libvirt {}` " +
			"(optionally with `uri`) to the `provider \"kiln\"` block.",
		pick: func(c *clients) *libvirt.Client { return c.libvirt },
	}
	vsphereBlock = engineBlock[vsphere.Client]{
		summary: "Missing vSphere configuration",
		detail: "kiln_vsphere_* needs the provider's vsphere block: add `vsphere {}` to the " +
			"`provider \"kiln\"` block (with server, user and password, or VSPHERE_SERVER, VSPHERE_USER and VSPHERE_PASSWORD).",
		pick: func(c *clients) *vsphere.Client { return c.vsphere },
	}
	kubernetesBlock = engineBlock[delivery.Engine]{
		summary: "Missing kubernetes configuration",
		detail: "Kiln's delivery resources need the provider's kubernetes block: add `kubernetes {}` " +
			"(with `config_path`, or `host` and credentials; `KUBECONFIG` is used when `config_path` is unset) " +
			"to the `provider \"kiln\"` block.",
		pick: func(c *clients) *delivery.Engine { return c.delivery },
	}
	registryBlock = engineBlock[oci.Registry]{
		summary: "Missing registry configuration",
		detail: "kiln_build pushes its outputs to the provider's registry: add `registry { url = ... }` " +
			"(with `username` and `password` where the registry wants them) to the `provider \"kiln\"` block.",
		pick: func(c *clients) *oci.Registry { return c.registry },
	}
)

// requireEngine returns the engine of block from the provider's clients c, or
// adds the error naming the missing block and returns nil.
func requireEngine[E any](c *clients, block engineBlock[E], diags *diag.Diagnostics) *E {
	if c != nil {
		if engine := block.pick(c); engine != nil {
			return engine
		}
	}
	diags.AddError(block.summary, block.detail)
	return nil
}

package provider

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"
	"github.com/hashicorp/terraform-plugin-testing/helper/acctest"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

const vsphereVMAddr = "kiln_vsphere_vm.test"

func vsphereProviderBlock(bed testenv.VsphereBed) string {
	return fmt.Sprintf(`
provider "kiln" {
  vsphere {
    server               = %q
    user                 = %q
    password             = %q
    allow_unverified_ssl = true
    datacenter           = %q
  }
}
`, bed.Server, bed.User, bed.Password, bed.Datacenter)
}

// vsphereVMConfig renders a kiln_vsphere_vm; extra is pasted into the resource body.
type vsphereVMConfig struct {
	bed       testenv.VsphereBed
	name      string
	numCPUs   int
	memoryMiB int
	diskGiB   int
	extra     string
}

func (c vsphereVMConfig) String() string {
	return vsphereProviderBlock(c.bed) + fmt.Sprintf(`
resource "kiln_vsphere_vm" "test" {
  name       = %q
  source     = %q
  cluster    = %q
  datastore  = %q
  num_cpus   = %d
  memory_mib = %d
  disks      = [{ size_gib = %d }]
  networks   = [%q]

  extra_config = {
    "guestinfo.role" = "build"
  }

  customize {
    hostname     = %q
    domain       = "example.test"
    dns_servers  = ["10.0.0.2"]
    ipv4_address = "10.0.0.5/24"
    ipv4_gateway = "10.0.0.1"
  }
%s
}
`, c.name, c.bed.Template, c.bed.Cluster, c.bed.Datastores[1], c.numCPUs, c.memoryMiB, c.diskGiB, c.bed.Network, c.name, c.extra)
}

// TestAccVsphereVM_fullClone drives a full clone through create with guest
// customization, drift, in-place growth, a refused live change, import by path and
// by UUID, and destroy.
func TestAccVsphereVM_fullClone(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Vsphere(t)
	cfg := vsphereVMConfig{bed: bed, name: acctest.RandomWithPrefix("kiln-acc"), numCPUs: 2, memoryMiB: 1024, diskGiB: 12}
	grown := cfg
	grown.numCPUs, grown.diskGiB, grown.extra = 4, 14, "  allow_power_cycle = true\n"
	refused := grown
	refused.numCPUs, refused.extra = 3, ""

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkVsphereVMGone(bed, cfg.name),
		Steps: []resource.TestStep{
			{
				Config: cfg.String(),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New("power_state"), knownvalue.StringExact("on")),
					statecheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New("default_ip_address"), knownvalue.StringExact("10.0.0.5")),
					statecheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New("ip_addresses"), knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("10.0.0.5")})),
					statecheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New("moid"), knownvalue.StringRegexp(regexp.MustCompile(`^vm-[0-9]+$`))),
					statecheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New("uuid"), knownvalue.StringRegexp(regexp.MustCompile(`^[0-9a-f-]{36}$`))),
					statecheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New("datacenter"), knownvalue.StringExact(bed.Datacenter)),
					statecheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New("folder"), knownvalue.StringExact("")),
					statecheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New("linked_clone"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New("host"), knownvalue.StringRegexp(regexp.MustCompile(`^DC0_C0_H[0-2]$`))),
				},
				Check: resource.ComposeTestCheckFunc(
					checkVsphereVM(bed, "/DC0/vm/"+cfg.name, vmWant{poweredOn: true, cpus: 2, memoryMiB: 1024, diskGiB: 12, datastore: bed.Datastores[1],
						hostname: cfg.name, extra: map[string]string{"guestinfo.role": "build"}}),
				),
			},
			{
				Config: cfg.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				// Powered off, memory changed and moved to another folder out of band:
				// the plan shows all three and apply puts them back.
				PreConfig: func() { driftVsphereVM(t, bed, "/DC0/vm/"+cfg.name, 2048, bed.OtherFolder) },
				Config:    cfg.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(vsphereVMAddr, plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New("power_state"), knownvalue.StringExact("on")),
						plancheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New("memory_mib"), knownvalue.Int64Exact(1024)),
						plancheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New("folder"), knownvalue.StringExact("")),
					},
				},
				Check: checkVsphereVM(bed, "/DC0/vm/"+cfg.name, vmWant{poweredOn: true, cpus: 2, memoryMiB: 1024, diskGiB: 12}),
			},
			{
				// CPUs (no hot-add: a power cycle, allowed) and the disk grow in place.
				Config: grown.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(vsphereVMAddr, plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New("num_cpus"), knownvalue.Int64Exact(4)),
					statecheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New("disks"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.ObjectExact(map[string]knownvalue.Check{"size_gib": knownvalue.Int64Exact(14)}),
					})),
				},
				Check: checkVsphereVM(bed, "/DC0/vm/"+cfg.name, vmWant{poweredOn: true, cpus: 4, memoryMiB: 1024, diskGiB: 14}),
			},
			{
				// Without allow_power_cycle a CPU change on a running VM without
				// hot-add fails, names the way out, and leaves the VM as it was.
				Config:      refused.String(),
				ExpectError: regexp.MustCompile(`(?s)num_cpus\s+4\s+->\s+3.*allow_power_cycle`),
			},
			{
				Config: grown.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: checkVsphereVM(bed, "/DC0/vm/"+cfg.name, vmWant{poweredOn: true, cpus: 4, memoryMiB: 1024, diskGiB: 14}),
			},
			{
				ResourceName:            vsphereVMAddr,
				ImportState:             true,
				ImportStateId:           "/DC0/vm/" + cfg.name,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"allow_power_cycle", "timeouts"},
			},
			{
				ResourceName: vsphereVMAddr,
				ImportState:  true,
				ImportStateIdFunc: func(s *terraform.State) (string, error) {
					return s.RootModule().Resources[vsphereVMAddr].Primary.Attributes["uuid"], nil
				},
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"allow_power_cycle", "timeouts"},
			},
		},
	})
}

// TestAccVsphereVM_linkedClone makes a powered-off linked clone on a given host,
// then powers it on with DHCP and waits for the address the guest reports.
func TestAccVsphereVM_linkedClone(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Vsphere(t)
	name := acctest.RandomWithPrefix("kiln-linked")
	config := func(power, wait string) string {
		return vsphereProviderBlock(bed) + fmt.Sprintf(`
resource "kiln_vsphere_vm" "test" {
  name                = %q
  source              = "%s/%s"
  linked_clone        = true
  snapshot            = %q
  host                = %q
  folder              = %q
  power_state         = %q
  wait_for_ip_timeout = %q

  customize {
    hostname = "linked-1"
    domain   = "example.test"
  }
}
`, name, bed.TemplateFolder, bed.TemplateName, bed.TemplateSnapshot, bed.Hosts[1], bed.OtherFolder, power, wait)
	}
	path := "/DC0/vm/" + bed.OtherFolder + "/" + name

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkVsphereVMGone(bed, name),
		Steps: []resource.TestStep{
			{
				Config: config("off", "5m"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New("linked_clone"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New("power_state"), knownvalue.StringExact("off")),
					statecheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New("cluster"), knownvalue.StringExact(bed.Cluster)),
					statecheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New("num_cpus"), knownvalue.Int64Exact(1)),
					statecheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New("disks"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.ObjectExact(map[string]knownvalue.Check{"size_gib": knownvalue.Int64Exact(testenv.TemplateDiskGiB)}),
					})),
					statecheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New("networks"), knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact(bed.Network)})),
					statecheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New("ip_addresses"), knownvalue.ListSizeExact(0)),
				},
				Check: checkVsphereVM(bed, path, vmWant{poweredOn: false, cpus: 1, memoryMiB: 512, diskGiB: testenv.TemplateDiskGiB, host: bed.Hosts[1]}),
			},
			{
				// Power on: the guest gets its address over DHCP a few seconds later,
				// and apply waits for it.
				PreConfig: func() { reportGuestIPLater(t, bed, path, "10.0.0.77", 3*time.Second) },
				Config:    config("on", "1m"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(vsphereVMAddr, plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New("default_ip_address"), knownvalue.StringExact("10.0.0.77")),
				},
				Check: checkVsphereVM(bed, path, vmWant{poweredOn: true, cpus: 1, memoryMiB: 512, diskGiB: testenv.TemplateDiskGiB, host: bed.Hosts[1], hostname: "linked-1"}),
			},
			{
				ResourceName:            vsphereVMAddr,
				ImportState:             true,
				ImportStateId:           bed.OtherFolder + "/" + name,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"wait_for_ip_timeout", "timeouts"},
			},
		},
	})
}

// TestAccVsphereVM_failures injects a task fault through the simulator and lets
// a guest IP never come: each is a clear error, the clone left behind is recorded
// (tainted), and the next apply replaces it, leaving exactly one VM.
func TestAccVsphereVM_failures(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Vsphere(t)
	name := acctest.RandomWithPrefix("kiln-fault")
	config := func(wait string) string {
		return vsphereProviderBlock(bed) + fmt.Sprintf(`
resource "kiln_vsphere_vm" "test" {
  name                = %q
  source              = %q
  cluster             = %q
  wait_for_ip_timeout = %q
}
`, name, bed.Template, bed.Cluster, wait)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkVsphereVMGone(bed, name),
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					bed.Service.AddFaultRule(&simulator.FaultInjectionRule{
						MethodName: "PowerOnVM_Task", ObjectType: "VirtualMachine", ObjectName: name,
						Probability: 1, FaultType: simulator.FaultTypeInsufficientResourcesFault,
						Message: "no capacity left on the cluster", Enabled: true,
					})
				},
				Config:      config("0"),
				ExpectError: regexp.MustCompile(`(?s)power on VM\s+"/DC0/vm/kiln-fault-[0-9]+".*no\s+capacity\s+left\s+on\s+the\s+cluster`),
			},
			{
				PreConfig: func() {
					bed.Service.ClearFaultRules()
					checkOneVM(t, bed, name, false)
				},
				Config: config("0"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(vsphereVMAddr, plancheck.ResourceActionReplace)},
				},
				Check: func(*terraform.State) error { checkOneVM(t, bed, name, true); return nil },
			},
			{
				// Powered off out of band, and no DHCP answers after the power-on:
				// the IP wait times out with a clear error.
				Config:      config("2s"),
				ExpectError: regexp.MustCompile(`(?s)timed\s+out\s+waiting\s+for\s+a\s+guest\s+IP\s+address\s+of\s+VM`),
				PreConfig: func() {
					withVsphere(t, bed, func(ctx context.Context, f *find.Finder) error {
						vm, err := f.VirtualMachine(ctx, "/DC0/vm/"+name)
						if err != nil {
							return err
						}
						task, err := vm.PowerOff(ctx)
						if err != nil {
							return err
						}
						return task.Wait(ctx)
					})
				},
			},
		},
	})
}

// TestAccVsphereVM_badInput checks plan-time and connection errors.
func TestAccVsphereVM_badInput(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Vsphere(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config: `
provider "kiln" {}
resource "kiln_vsphere_vm" "test" {
  name    = "no-block"
  source  = "templates/debian-12"
  cluster = "C0"
}`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`needs the provider's vsphere block`),
			},
			{
				Config: vsphereProviderBlock(bed) + `
resource "kiln_vsphere_vm" "test" {
  name   = "no-placement"
  source = "templates/debian-12"
}`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)cluster.*host`),
			},
			{
				Config: vsphereProviderBlock(bed) + `
resource "kiln_vsphere_vm" "test" {
  name        = "bad-values"
  source      = "templates/debian-12"
  cluster     = "C0"
  power_state = "paused"
  customize {
    ipv4_address = "10.0.0.5"
  }
}`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)(power_state.*value must be one of|ipv4_address.*prefix length)`),
			},
			{
				Config: vsphereProviderBlock(bed) + `
resource "kiln_vsphere_vm" "test" {
  name                = "bad-settings"
  source              = "templates/debian-12"
  cluster             = "C0"
  wait_for_ip_timeout = "-1m"
  extra_config = {
    "Kiln.source" = "mine"
  }
}`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)(Negative duration.*Reserved extraConfig key|Reserved extraConfig key.*Negative duration)`),
			},
			{
				Config: strings.Replace(vsphereProviderBlock(bed), bed.Password, "wrong-password", 1) + fmt.Sprintf(`
resource "kiln_vsphere_vm" "test" {
  name    = "bad-login"
  source  = %q
  cluster = %q
}`, bed.Template, bed.Cluster),
				ExpectError: regexp.MustCompile(`(?s)log\s+in\s+to\s+vSphere\s+at\s+127\.0\.0\.1:[0-9]+\s+as\s+"kiln":\s+user\s+name\s+or\s+password\s+rejected`),
			},
			{
				Config: vsphereProviderBlock(bed) + fmt.Sprintf(`
resource "kiln_vsphere_vm" "test" {
  name    = "no-source"
  source  = "templates/nope"
  cluster = %q
}`, bed.Cluster),
				ExpectError: regexp.MustCompile(`(?s)find\s+VM\s+"templates/nope"\s+in\s+datacenter\s+"DC0".*not\s+found`),
			},
		},
	})
}

func TestNotReservedKey(t *testing.T) {
	for key, wantErr := range map[string]bool{
		"guestinfo.role": false, "k": false, "ki": false, "kil": false, "kiln": false, "kilnx.a": false,
		"kiln.source": true, "KILN.source": true, "kiln.": true,
	} {
		resp := &validator.StringResponse{}
		notReservedKey{}.ValidateString(context.Background(), validator.StringRequest{
			Path: path.Root("extra_config"), ConfigValue: basetypes.NewStringValue(key),
		}, resp)
		if got := resp.Diagnostics.HasError(); got != wantErr {
			t.Errorf("%q: error = %v, want %v", key, got, wantErr)
		}
	}
}

// withVsphere runs fn on a session of its own, so that assertions and drift do not
// go through the engine under test.
func withVsphere(t *testing.T, bed testenv.VsphereBed, fn func(context.Context, *find.Finder) error) {
	t.Helper()
	if err := withVsphereErr(bed, fn); err != nil {
		t.Fatal(err)
	}
}

func withVsphereErr(bed testenv.VsphereBed, fn func(context.Context, *find.Finder) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, f, err := bed.Finder(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = c.Logout(ctx) }()
	return fn(ctx, f)
}

// driftVsphereVM powers the VM off, sets its memory and moves it to folder, as an
// operator in the vSphere client would.
func driftVsphereVM(t *testing.T, bed testenv.VsphereBed, path string, memoryMiB int64, folder string) {
	withVsphere(t, bed, func(ctx context.Context, f *find.Finder) error {
		vm, err := f.VirtualMachine(ctx, path)
		if err != nil {
			return err
		}
		task, err := vm.PowerOff(ctx)
		if err != nil {
			return err
		}
		if err := task.Wait(ctx); err != nil {
			return err
		}
		if task, err = vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{MemoryMB: memoryMiB}); err != nil {
			return err
		}
		if err := task.Wait(ctx); err != nil {
			return err
		}
		dst, err := f.Folder(ctx, "/DC0/vm/"+folder)
		if err != nil {
			return err
		}
		if task, err = dst.MoveInto(ctx, []types.ManagedObjectReference{vm.Reference()}); err != nil {
			return err
		}
		return task.Wait(ctx)
	})
}

// reportGuestIPLater plays the guest's VMware Tools: once the VM at path exists and is
// powered on, it waits delay and reports ip as the guest's address.
func reportGuestIPLater(t *testing.T, bed testenv.VsphereBed, path, ip string, delay time.Duration) {
	done := make(chan error, 1)
	t.Cleanup(func() {
		if err := <-done; err != nil {
			t.Errorf("report guest IP: %v", err)
		}
	})
	go func() {
		done <- withVsphereErr(bed, func(ctx context.Context, f *find.Finder) error {
			vm, err := f.VirtualMachine(ctx, path)
			for ; err != nil; vm, err = f.VirtualMachine(ctx, path) { // the VM may be still to come
				if _, notFound := err.(*find.NotFoundError); !notFound || ctx.Err() != nil {
					return err
				}
				time.Sleep(200 * time.Millisecond)
			}
			if err := vm.WaitForPowerState(ctx, types.VirtualMachinePowerStatePoweredOn); err != nil {
				return err
			}
			time.Sleep(delay)
			task, err := vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{
				ExtraConfig: []types.BaseOptionValue{&types.OptionValue{Key: "SET.guest.ipAddress", Value: ip}},
			})
			if err != nil {
				return err
			}
			return task.Wait(ctx)
		})
	}()
}

type vmWant struct {
	poweredOn bool
	cpus      int32
	memoryMiB int32
	diskGiB   int64
	datastore string
	host      string
	hostname  string
	extra     map[string]string
}

// checkVsphereVM asserts on vCenter itself, through a session of its own.
func checkVsphereVM(bed testenv.VsphereBed, path string, want vmWant) resource.TestCheckFunc {
	return func(*terraform.State) error {
		return withVsphereErr(bed, func(ctx context.Context, f *find.Finder) error {
			vm, err := f.VirtualMachine(ctx, path)
			if err != nil {
				return err
			}
			var m mo.VirtualMachine
			if err := vm.Properties(ctx, vm.Reference(), []string{"config", "runtime", "guest"}, &m); err != nil {
				return err
			}
			if got := m.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn; got != want.poweredOn {
				return fmt.Errorf("VM %s powered on = %v, want %v", path, got, want.poweredOn)
			}
			if m.Config.Hardware.NumCPU != want.cpus || m.Config.Hardware.MemoryMB != want.memoryMiB {
				return fmt.Errorf("VM %s has %d CPUs and %d MiB, want %d and %d", path, m.Config.Hardware.NumCPU, m.Config.Hardware.MemoryMB, want.cpus, want.memoryMiB)
			}
			disks := object.VirtualDeviceList(m.Config.Hardware.Device).SelectByType((*types.VirtualDisk)(nil))
			if len(disks) != 1 || disks[0].(*types.VirtualDisk).CapacityInBytes != want.diskGiB<<30 {
				return fmt.Errorf("VM %s disks = %d, want one of %d GiB", path, len(disks), want.diskGiB)
			}
			if want.datastore != "" && !strings.HasPrefix(m.Config.Files.VmPathName, "["+want.datastore+"]") {
				return fmt.Errorf("VM %s files at %s, want datastore %s", path, m.Config.Files.VmPathName, want.datastore)
			}
			if want.host != "" {
				name, err := object.NewCommon(vm.Client(), *m.Runtime.Host).ObjectName(ctx)
				if err != nil {
					return err
				}
				if name != want.host {
					return fmt.Errorf("VM %s on host %s, want %s", path, name, want.host)
				}
			}
			if want.hostname != "" && (m.Guest == nil || m.Guest.HostName != want.hostname) {
				return fmt.Errorf("VM %s guest host name = %+v, want %s", path, m.Guest, want.hostname)
			}
			for k, v := range want.extra {
				found := false
				for _, o := range m.Config.ExtraConfig {
					ov := o.GetOptionValue()
					found = found || (ov.Key == k && ov.Value == v)
				}
				if !found {
					return fmt.Errorf("VM %s has no extraConfig %s = %q", path, k, v)
				}
			}
			return nil
		})
	}
}

// checkOneVM asserts that exactly one VM is named name, in the given power state.
func checkOneVM(t *testing.T, bed testenv.VsphereBed, name string, poweredOn bool) {
	t.Helper()
	withVsphere(t, bed, func(ctx context.Context, f *find.Finder) error {
		vms, err := f.VirtualMachineList(ctx, "/DC0/vm/...")
		if err != nil {
			return err
		}
		var found []*object.VirtualMachine
		for _, vm := range vms {
			if vm.Name() == name {
				found = append(found, vm)
			}
		}
		if len(found) != 1 {
			return fmt.Errorf("%d VMs named %s, want 1", len(found), name)
		}
		state, err := found[0].PowerState(ctx)
		if err != nil {
			return err
		}
		if got := state == types.VirtualMachinePowerStatePoweredOn; got != poweredOn {
			return fmt.Errorf("VM %s powered on = %v, want %v", name, got, poweredOn)
		}
		return nil
	})
}

// checkVsphereVMGone asserts that destroy left no VM named name anywhere, and left
// the template alone.
func checkVsphereVMGone(bed testenv.VsphereBed, name string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		return withVsphereErr(bed, func(ctx context.Context, f *find.Finder) error {
			vms, err := f.VirtualMachineList(ctx, "/"+bed.Datacenter+"/vm/...")
			if err != nil {
				return err
			}
			template := false
			for _, vm := range vms {
				if vm.Name() == name {
					return fmt.Errorf("VM %s still exists", vm.InventoryPath)
				}
				template = template || vm.InventoryPath == bed.Template
			}
			if !template {
				return fmt.Errorf("template %s is gone", bed.Template)
			}
			return nil
		})
	}
}

// TestAccVsphereVM_importOperationSettings checks that settings which only steer
// an operation (the IP wait, power cycles, timeouts) make neither an import nor a
// plan dirty on their own, that an update changing only them touches nothing, and
// that an in-place update plans the computed values it does not move as known.
func TestAccVsphereVM_importOperationSettings(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Vsphere(t)
	name := acctest.RandomWithPrefix("kiln-import")
	path := "/DC0/vm/" + name
	// No customization: the guest asks DHCP, which never answers in the
	// simulator, so any wait for an IP address would time out.
	config := func(memoryMiB int, allowPowerCycle bool, wait, extra string) string {
		return vsphereProviderBlock(bed) + fmt.Sprintf(`
resource "kiln_vsphere_vm" "test" {
  name                = %q
  source              = %q
  cluster             = %q
  memory_mib          = %d
  allow_power_cycle   = %t
  wait_for_ip_timeout = %q
%s
}
`, name, bed.Template, bed.Cluster, memoryMiB, allowPowerCycle, wait, extra)
	}
	timeouts := "  timeouts {\n    update = \"4m\"\n  }\n"
	known := func(attrs ...string) []plancheck.PlanCheck {
		var checks []plancheck.PlanCheck
		for _, a := range attrs {
			checks = append(checks, plancheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New(a), knownvalue.NotNull()))
		}
		return append(checks,
			plancheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New("default_ip_address"), knownvalue.Null()),
			plancheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New("ip_addresses"), knownvalue.ListSizeExact(0)))
	}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkVsphereVMGone(bed, name),
		Steps: []resource.TestStep{
			{
				Config: config(512, false, "0", ""),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New("ip_addresses"), knownvalue.ListSizeExact(0)),
				},
				Check: checkVsphereVM(bed, path, vmWant{poweredOn: true, cpus: 1, memoryMiB: 512, diskGiB: testenv.TemplateDiskGiB}),
			},
			{
				// Imported into a fresh state with an import block, under a
				// configuration whose operation settings are not the defaults an
				// import records: the plan is empty.
				ResourceName:    vsphereVMAddr,
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithID,
				ImportStateId:   path,
				Config:          config(512, true, "10m", ""),
				ImportPlanChecks: resource.ImportPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				// Only operation settings change, timeouts among them: the update
				// records them and does not wait for the IP address that never comes.
				Config: config(512, false, "2s", timeouts),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: append(known(), plancheck.ExpectResourceAction(vsphereVMAddr, plancheck.ResourceActionUpdate)),
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(vsphereVMAddr, tfjsonpath.New("wait_for_ip_timeout"), knownvalue.StringExact("2s")),
				},
			},
			{
				// Memory grows live (hot-add is on): nothing but memory moves, so
				// everything else computed is planned as known.
				PreConfig: func() { enableMemoryHotAdd(t, bed, path) },
				Config:    config(1024, false, "2s", timeouts),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: append(known("id", "uuid", "moid", "datacenter", "host", "cluster", "datastore", "num_cpus", "disks", "networks"),
						plancheck.ExpectResourceAction(vsphereVMAddr, plancheck.ResourceActionUpdate)),
				},
				Check: checkVsphereVM(bed, path, vmWant{poweredOn: true, cpus: 1, memoryMiB: 1024, diskGiB: testenv.TemplateDiskGiB}),
			},
		},
	})
}

// enableMemoryHotAdd turns memory hot-add on, as the template's owner would.
func enableMemoryHotAdd(t *testing.T, bed testenv.VsphereBed, path string) {
	withVsphere(t, bed, func(ctx context.Context, f *find.Finder) error {
		vm, err := f.VirtualMachine(ctx, path)
		if err != nil {
			return err
		}
		on := true
		task, err := vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{MemoryHotAddEnabled: &on})
		if err != nil {
			return err
		}
		return task.Wait(ctx)
	})
}

package provider

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/acctest"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

// goBuildFarmModule is the examples/modules/go-build-farm module applied
// through a module block with one VM on the libvirt test bed, its pool
// recorded in the test cluster. extra goes into the module block.
func goBuildFarmModule(bed testenv.LibvirtBed, kube testenv.KubeBed, source, name, keyFile, extra string) string {
	return moduleRoot + fmt.Sprintf(`
provider "kiln" {
  libvirt {
    uri = %[1]q
  }
  kubernetes {
    config_path = %[2]q
  }
}

module "farm" {
  source = %[3]q

  name = %[4]q
  libvirt = {
    pool          = %[5]q
    base_volume   = %[6]q
    domain_type   = %[7]q
    memory_mib    = 1024
    disk_size_gib = 8
  }
  ssh_public_key  = file(%[8]q)
  ssh_private_key = file(%[9]q)

  go_versions = [%[10]q]
  labels      = { pool = %[4]q }
%[11]s
}

output "pool" {
  value = "${module.farm.pool} ${jsonencode(module.farm.labels)} ${module.farm.build_user}"
}

output "host" {
  value = module.farm.hosts[%[12]q]
}

output "go" {
  value = "${join(",", module.farm.go_versions)} default ${module.farm.go_default}"
}
`, bed.URI, kube.Kubeconfig, source, name, bed.Pool, bed.BaseVolume, bed.DomainType,
		keyFile+".pub", keyFile, buildGoVersion, extra, name+"-1")
}

// TestAccModule_goBuildFarm applies the go-build-farm module through a module
// block with host_count = 1 on the libvirt test bed: one VM boot (the only
// guest cost), Go installed and the host hardened (swap off, the open-file
// limit), the host registered and ready in the pool with the Go version. The
// plan afterwards is empty. Bad inputs are refused at plan before that: a
// platform without its settings, and a default Go version not among those
// installed.
func TestAccModule_goBuildFarm(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Libvirt(t)
	kube := testenv.Kube(t)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	source := filepath.Join(root, "examples", "modules", "go-build-farm")
	name := acctest.RandomWithPrefix("farm")
	vmName := name + "-1"
	bed.RemoveGuestAtCleanup(t, vmName)
	keyFile, signer := writeLoginKey(t, t.TempDir())
	// The module requires kilnhq/kiln: the test serves the provider under
	// that address.
	t.Setenv("TF_ACC_PROVIDER_NAMESPACE", "kilnhq")
	start := time.Now()
	defer func() { t.Logf("TestAccModule_goBuildFarm took %s", time.Since(start).Round(time.Second)) }()

	dir := func(extra string) func(config.TestStepConfigRequest) string {
		return exampleDir(t, nil, map[string]string{"main.tf": goBuildFarmModule(bed, kube, source, name, keyFile, extra)})
	}
	farm := dir("")
	// The configurations are directories (the CLI's init installs the module
	// from them), whose provider blocks make the providers the steps'.
	resource.Test(t, resource.TestCase{
		Steps: []resource.TestStep{
			{
				ProtoV6ProviderFactories: testAccProviders,
				ConfigDirectory:          dir(`  platform = "vsphere"`),
				PlanOnly:                 true,
				ExpectError:              regexp.MustCompile(`platform is "vsphere": set vsphere`),
			},
			{
				ProtoV6ProviderFactories: testAccProviders,
				ConfigDirectory:          dir(`  go_default = "1.23.10"`),
				PlanOnly:                 true,
				ExpectError:              regexp.MustCompile(`go_default must be one of go_versions`),
			},
			{
				ProtoV6ProviderFactories: testAccProviders,
				ConfigDirectory:          farm,
				ConfigStateChecks: []statecheck.StateCheck{outputsAre(func(out map[string]any) error {
					if err := outputsEqual(out, map[string]string{
						"pool": fmt.Sprintf(`%s {"pool":%q} kiln-build`, name, name),
						"go":   buildGoVersion + " default " + buildGoVersion,
					}); err != nil {
						return err
					}
					host, ok := out["host"].(map[string]any)
					if !ok {
						return fmt.Errorf("output host is %v", out["host"])
					}
					if host["ready"] != true || fmt.Sprint(host["go_versions"]) != "["+buildGoVersion+"]" {
						return fmt.Errorf("the pool's host is %v, want ready with go_versions [%s]", host, buildGoVersion)
					}
					port, err := strconv.Atoi(fmt.Sprint(host["port"]))
					if err != nil {
						return fmt.Errorf("output host.port: %w", err)
					}
					hostKey, _ := host["host_key"].(string)
					address, _ := host["address"].(string)
					// The host as hardened: Go on the PATH, no swap, the
					// open-file limit for logins, the pool's build user.
					got, err := loginOutput(address, port, hostKey, signer,
						"go version | cut -d' ' -f3; swapon --noheadings | wc -l; ulimit -n; id -un kiln-build")
					if err != nil {
						return err
					}
					if want := fmt.Sprintf("go%s\n0\n65536\nkiln-build", buildGoVersion); got != want {
						return fmt.Errorf("on the host: %q, want %q", got, want)
					}
					return nil
				})},
			},
			{
				ProtoV6ProviderFactories: testAccProviders,
				ConfigDirectory:          farm,
				ConfigPlanChecks:         resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			// The checks read the state as JSON (outputsAre): the legacy
			// state CheckDestroy gets has no child modules. So the last step
			// destroys, and the VM's removal is checked after the test.
			{ProtoV6ProviderFactories: testAccProviders, ConfigDirectory: farm, Destroy: true},
		},
	})
	if err := checkVMGone(bed, vmName)(nil); err != nil {
		t.Error(err)
	}
}

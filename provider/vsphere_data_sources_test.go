package provider

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

// TestAccVsphereDataSources looks the bed's inventory up with the connection
// taken from the VSPHERE_* environment variables.
func TestAccVsphereDataSources(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Vsphere(t)
	vsphereEnv(t, bed, bed.Datacenter)

	config := fmt.Sprintf(`
provider "kiln" {
  vsphere {}
}

data "kiln_vsphere_datacenter" "dc" {}

data "kiln_vsphere_cluster" "c" {
  name = %q
}

data "kiln_vsphere_datastore" "ds" {
  name = %q
}

data "kiln_vsphere_network" "pg" {
  name = %q
}

data "kiln_vsphere_network" "dvpg" {
  name = %q
}

data "kiln_vsphere_template" "t" {
  name = "%s/%s"
}
`, bed.Cluster, bed.Datastores[1], bed.Network, bed.DVPortgroup, bed.TemplateFolder, bed.TemplateName)

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.kiln_vsphere_datacenter.dc", tfjsonpath.New("name"), knownvalue.StringExact(bed.Datacenter)),
					statecheck.ExpectKnownValue("data.kiln_vsphere_datacenter.dc", tfjsonpath.New("path"), knownvalue.StringExact("/"+bed.Datacenter)),
					statecheck.ExpectKnownValue("data.kiln_vsphere_cluster.c", tfjsonpath.New("path"), knownvalue.StringExact("/DC0/host/"+bed.Cluster)),
					statecheck.ExpectKnownValue("data.kiln_vsphere_cluster.c", tfjsonpath.New("hosts"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.StringExact(bed.Hosts[0]), knownvalue.StringExact(bed.Hosts[1]), knownvalue.StringExact(bed.Hosts[2]),
					})),
					statecheck.ExpectKnownValue("data.kiln_vsphere_cluster.c", tfjsonpath.New("resource_pool"), knownvalue.StringExact("/DC0/host/"+bed.Cluster+"/Resources")),
					statecheck.ExpectKnownValue("data.kiln_vsphere_datastore.ds", tfjsonpath.New("id"), knownvalue.StringRegexp(regexp.MustCompile(`^datastore-[0-9]+$`))),
					statecheck.ExpectKnownValue("data.kiln_vsphere_datastore.ds", tfjsonpath.New("capacity_bytes"), knownvalue.NotNull()),
					statecheck.ExpectKnownValue("data.kiln_vsphere_network.pg", tfjsonpath.New("type"), knownvalue.StringExact("Network")),
					statecheck.ExpectKnownValue("data.kiln_vsphere_network.dvpg", tfjsonpath.New("type"), knownvalue.StringExact("DistributedVirtualPortgroup")),
					statecheck.ExpectKnownValue("data.kiln_vsphere_template.t", tfjsonpath.New("path"), knownvalue.StringExact(bed.Template)),
					statecheck.ExpectKnownValue("data.kiln_vsphere_template.t", tfjsonpath.New("is_template"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue("data.kiln_vsphere_template.t", tfjsonpath.New("guest_id"), knownvalue.StringExact("debian12_64Guest")),
					statecheck.ExpectKnownValue("data.kiln_vsphere_template.t", tfjsonpath.New("current_snapshot"), knownvalue.StringExact(bed.TemplateSnapshot)),
					statecheck.ExpectKnownValue("data.kiln_vsphere_template.t", tfjsonpath.New("memory_mib"), knownvalue.Int64Exact(512)),
					statecheck.ExpectKnownValue("data.kiln_vsphere_template.t", tfjsonpath.New("disks"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.ObjectExact(map[string]knownvalue.Check{
							"label":    knownvalue.StringRegexp(regexp.MustCompile(`.+`)),
							"size_gib": knownvalue.Int64Exact(testenv.TemplateDiskGiB),
						}),
					})),
					statecheck.ExpectKnownValue("data.kiln_vsphere_template.t", tfjsonpath.New("networks"), knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact(bed.Network)})),
				},
			},
			{
				Config: `
provider "kiln" {
  vsphere {}
}

data "kiln_vsphere_cluster" "missing" {
  name = "no-such-cluster"
}
`,
				ExpectError: regexp.MustCompile(`(?s)find\s+cluster\s+"no-such-cluster"\s+in\s+datacenter\s+"DC0".*not\s+found`),
			},
			{
				Config: `
provider "kiln" {
  vsphere {}
}

data "kiln_vsphere_template" "missing" {
  name = "templates/no-such-template"
}
`,
				ExpectError: regexp.MustCompile(`(?s)find\s+VM\s+"templates/no-such-template"`),
			},
		},
	})
}

// vsphereEnv puts the connection to bed in the VSPHERE_* environment variables,
// with datacenter as the default datacenter ("" for none).
func vsphereEnv(t *testing.T, bed testenv.VsphereBed, datacenter string) {
	t.Helper()
	t.Setenv("VSPHERE_SERVER", bed.Server)
	t.Setenv("VSPHERE_USER", bed.User)
	t.Setenv("VSPHERE_PASSWORD", bed.Password)
	t.Setenv("VSPHERE_ALLOW_UNVERIFIED_SSL", "true")
	t.Setenv("VSPHERE_DATACENTER", datacenter)
}

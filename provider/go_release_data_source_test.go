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

// TestAccGoReleaseDataSource resolves versions on the real module proxy (with
// the real checksum database) and on a local mirror's release index.
func TestAccGoReleaseDataSource(t *testing.T) {
	testAccPreCheck(t)
	mirror := testenv.StartGoMirror(t, []string{"1.22.12"})
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config: fmt.Sprintf(`
provider "kiln" {}

data "kiln_go_release" "exact" {
  version = "1.24.4"
}

data "kiln_go_release" "minor" {
  version = "1.23"
}

data "kiln_go_release" "mirror" {
  version   = "stable"
  source    = "dl"
  index_url = %q
}
`, mirror.IndexURL),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.kiln_go_release.exact", tfjsonpath.New("module_version"), knownvalue.StringExact("v0.0.1-go1.24.4.linux-amd64")),
					// The hash sum.golang.org records for go1.24.4 linux/amd64.
					statecheck.ExpectKnownValue("data.kiln_go_release.exact", tfjsonpath.New("module_hash"), knownvalue.StringExact("h1:nm4Il5pypT+vEB1UPY4e+r1p/0HoRr/2jjj+dwb8KhA=")),
					statecheck.ExpectKnownValue("data.kiln_go_release.minor", tfjsonpath.New("resolved"), knownvalue.StringRegexp(regexp.MustCompile(`^1\.23\.(1[2-9]|[2-9][0-9])$`))),
					statecheck.ExpectKnownValue("data.kiln_go_release.mirror", tfjsonpath.New("resolved"), knownvalue.StringExact("1.22.12")),
					statecheck.ExpectKnownValue("data.kiln_go_release.mirror", tfjsonpath.New("filename"), knownvalue.StringExact("go1.22.12.linux-amd64.tar.gz")),
					statecheck.ExpectKnownValue("data.kiln_go_release.mirror", tfjsonpath.New("sha256"), knownvalue.StringRegexp(regexp.MustCompile(`^[0-9a-f]{64}$`))),
				},
			},
			{
				Config: `
provider "kiln" {}

data "kiln_go_release" "missing" {
  version = "1.99.0"
}
`,
				ExpectError: regexp.MustCompile(`no such stable release`),
			},
		},
	})
}

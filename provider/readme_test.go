package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"golang.org/x/crypto/ssh"

	"github.com/kilnhq/terraform-provider-kiln/internal/libvirt"
	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

// README.md's HCL is applied by tests, each part by its own mechanism:
//
//   - the first screen (before the first "## " section): excerpts of
//     examples/quickstart/main.tf, copied verbatim (TestReadme_firstScreen
//     checks it), which TestAccQuickstart applies as written;
//   - "## A short tour" (readmeSnippets): a configuration of its own, which
//     TestAccReadme_tour applies snippet by snippet, rewritten for this
//     machine (onThisMachine, farmOnThisMachine);
//   - "## Install": a provider requirement from the registry and a CLI
//     configuration, what TestAccInstall exercises.

// readme returns README.md.
func readme(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// hclBlocks returns the ```hcl blocks of markdown, in order.
func hclBlocks(markdown string) []string {
	var out []string
	for _, b := range regexp.MustCompile("(?s)```hcl\n(.*?)```").FindAllStringSubmatch(markdown, -1) {
		out = append(out, b[1])
	}
	return out
}

// readmeSnippets returns the HCL snippets of README.md's tour, in order.
func readmeSnippets(t *testing.T) []string {
	t.Helper()
	tour, ok := markdownSection(readme(t), "## A short tour")
	if !ok {
		t.Fatal(`README.md has no "## A short tour" section`)
	}
	return hclBlocks(tour)
}

// TestReadme_firstScreen checks that every HCL block of README.md's first
// screen (what comes before its first "## " section) is in
// examples/quickstart/main.tf verbatim, so that what a reader sees first is
// what TestAccQuickstart applies.
func TestReadme_firstScreen(t *testing.T) {
	first, _, ok := strings.Cut(readme(t), "\n## ")
	if !ok {
		t.Fatal(`README.md has no "## " section`)
	}
	blocks := hclBlocks(first)
	if len(blocks) == 0 {
		t.Fatal("README.md's first screen shows no HCL: it shows the quickstart's flow")
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	mainTF, err := os.ReadFile(filepath.Join(root, "examples", "quickstart", "main.tf"))
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range blocks {
		if !strings.Contains(string(mainTF), b) {
			t.Errorf("README.md's first screen, HCL block %d, is not in examples/quickstart/main.tf as written (copy it from there):\n%s", i+1, b)
		}
	}
}

// readmeConfig is the configuration a reader has after copying snippets in
// order: a block replaces the earlier one of the same type and labels (the
// provider block gaining a cluster and a registry), other blocks add to it.
func readmeConfig(t *testing.T, snippets []string) string {
	t.Helper()
	var blocks []*hclwrite.Block
	for _, s := range snippets {
		f, diags := hclwrite.ParseConfig([]byte(s), "README.md", hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("README.md's tour: %s", diags)
		}
		for _, b := range f.Body().Blocks() {
			same := func(o *hclwrite.Block) bool { return o.Type() == b.Type() && slices.Equal(o.Labels(), b.Labels()) }
			if i := slices.IndexFunc(blocks, same); i >= 0 {
				blocks[i] = b
			} else {
				blocks = append(blocks, b)
			}
		}
	}
	out := hclwrite.NewEmptyFile()
	for _, b := range blocks {
		out.Body().AppendBlock(b)
		out.Body().AppendNewline()
	}
	return string(out.Bytes())
}

// markdownSection returns the section of doc under heading, up to the next
// heading of the same level.
func markdownSection(doc, heading string) (string, bool) {
	_, rest, ok := strings.Cut(doc, "\n"+heading+"\n")
	if !ok {
		return "", false
	}
	level := heading[:strings.Index(heading, " ")+1]
	if end := strings.Index(rest, "\n"+level); end >= 0 {
		rest = rest[:end]
	}
	return rest, true
}

// onThisMachine rewrites what a reader changes when copying a snippet: the
// paths of their keys, the pool, the VM's name (tests may run side by side),
// and the domain type that boots on this machine.
func onThisMachine(t *testing.T, hcl string, bed testenv.LibvirtBed, keyFile, name string) string {
	t.Helper()
	r := strings.NewReplacer(
		`"~/.ssh/id_ed25519.pub"`, fmt.Sprintf("%q", keyFile+".pub"),
		`"~/.ssh/id_ed25519"`, fmt.Sprintf("%q", keyFile),
		`uri = "qemu:///system"`, fmt.Sprintf("uri = %q", bed.URI),
		`pool          = "default"`, fmt.Sprintf("pool          = %q\n  domain_type   = %q", bed.Pool, bed.DomainType),
		`base_volume   = "debian12-base.qcow2"`, fmt.Sprintf("base_volume   = %q", bed.BaseVolume),
		`"go-builder-1"`, fmt.Sprintf("%q", name),
	)
	out := r.Replace(hcl)
	for _, want := range []string{keyFile, bed.Pool, name} {
		if !strings.Contains(out, want) {
			t.Fatalf("README.md's tour changed shape: %q not substituted in\n%s", want, out)
		}
	}
	return out
}

// farmOnThisMachine rewrites what a reader changes in the tour's build farm
// snippets: their cluster, registry (here on loopback, without TLS), git
// repository and credentials' user names, the path of their service's YAML,
// and the project's and pool's names (tests may run side by side).
func farmOnThisMachine(t *testing.T, hcl string, b buildFarmBed, servicesYAML string) string {
	t.Helper()
	r := strings.NewReplacer(
		`"~/.kube/config"`, fmt.Sprintf("%q", b.kube.Kubeconfig),
		`url      = "registry.example.com"`, fmt.Sprintf("url      = %q\n    insecure = true", b.registry.Host),
		"\n    username = \"kiln\"", fmt.Sprintf("\n    username = %q", b.registry.Username),
		`url      = "https://git.example.com/shop/backend.git"`, fmt.Sprintf("url      = %q", b.repo.URL),
		"\n      username = \"kiln\"", fmt.Sprintf("\n      username = %q", b.git.Username),
		`file("deploy/backend.yaml")`, fmt.Sprintf("file(%q)", servicesYAML),
		`name              = "shop"`, fmt.Sprintf("name              = %q", b.name),
		`name   = "go"`, fmt.Sprintf("name   = %q", b.name),
		`{ pool = "go" }`, fmt.Sprintf("{ pool = %q }", b.name),
	)
	out := r.Replace(hcl)
	var wants []string
	if strings.Contains(hcl, `resource "kiln_build_pool"`) {
		wants = append(wants, b.kube.Kubeconfig, b.registry.Host, b.registry.Username, b.name)
	}
	if strings.Contains(hcl, `resource "kiln_build" "`) {
		wants = append(wants, b.repo.URL, b.git.Username, servicesYAML)
	}
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Fatalf("README.md's build farm changed shape: %q not substituted in\n%s", want, out)
		}
	}
	return out
}

// TestAccReadme_tour applies README.md's tour as written: a VM, then a Go host
// on it with a default left to Kiln and a version request ("1.24"); the next
// plan is empty. Then the build farm on them, with this machine's cluster,
// registry and git server as a reader's own: the VM registered as a pool, and
// the sample service built from git into an image in the registry. Growing
// the VM's memory then updates the VM in place without touching the host, the
// pool or the build, all reached through the VM's SSH attributes.
//
// The build user's Go build cache is seeded before the build, as in
// TestAccBuild_farm, with the toolchain the host resolved "1.24" to.
func TestAccReadme_tour(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Libvirt(t)
	farm := newBuildFarmBed(t, "kiln-readme")
	keyFile, signer := writeLoginKey(t, t.TempDir())
	name := farm.name
	bed.RemoveGuestAtCleanup(t, name)

	// The sample service as a reader's repository: its main package in
	// cmd/backend.
	files := testenv.SampleService(t)
	for path, data := range files {
		if strings.HasSuffix(path, ".go") && !strings.Contains(path, "/") {
			files["cmd/backend/"+path] = data
			delete(files, path)
		}
	}
	farm.repo = farm.git.NewRepo(t)
	commit := farm.repo.Commit(t, "the shop's backend", files)
	servicesYAML := filepath.Join(t.TempDir(), "backend.yaml")
	if err := os.WriteFile(servicesYAML, []byte(readmeBackendYAML), 0o644); err != nil {
		t.Fatal(err)
	}

	snippets := readmeSnippets(t)
	if len(snippets) != 4 {
		t.Fatalf("README.md's tour has %d hcl snippets, want 4: the VM, the Go host, the pool, the build", len(snippets))
	}
	// The guest reaches the Go module proxy through this machine, as a reader
	// behind a proxy would set it.
	viaProxy := func(hcl string) string {
		out := strings.Replace(hcl, `env = { GOPRIVATE = "git.example.com/*" }`,
			fmt.Sprintf(`env = { GOPRIVATE = "git.example.com/*", GOPROXY = %q }`, farm.proxy), 1)
		if out == hcl {
			t.Fatal("README.md's Go host no longer sets env = { GOPRIVATE = ... }")
		}
		return out
	}
	// The configuration after the first n snippets, on this machine.
	upTo := func(n int) string {
		return viaProxy(farmOnThisMachine(t, onThisMachine(t, readmeConfig(t, snippets[:n]), bed, keyFile, name), farm, servicesYAML))
	}
	tour, withPool, withBuild := upTo(2), upTo(3), upTo(4)
	grown := strings.Replace(withBuild, "memory_mib    = 2048", "memory_mib    = 2560", 1)
	if grown == withBuild {
		t.Fatal("README.md's tour no longer sets memory_mib = 2048")
	}
	registryPassword := config.StringVariable(farm.registry.Password)
	poolVars := config.Variables{"registry_password": registryPassword}
	buildVars := config.Variables{"registry_password": registryPassword, "git_token": config.StringVariable(farm.git.Password)}

	const vm, host = "kiln_libvirt_vm.builder", "kiln_go_host.builder"
	const buildPool, build, project = "kiln_build_pool.go", "kiln_build.backend", "kiln_project.shop"
	var goInode, goVersion string
	hostDir := t.TempDir()
	start := time.Now()
	var farmStart time.Time
	defer func() { t.Logf("TestAccReadme_tour took %s", time.Since(start).Round(time.Second)) }()

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkVMGone(bed, name),
		Steps: []resource.TestStep{
			{
				Config: tour,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(host, tfjsonpath.New("go").AtMapKey("resolved_versions"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.StringRegexp(regexp.MustCompile(`^1\.24\.\d+$`)), knownvalue.StringExact("1.23.10")})),
					statecheck.ExpectKnownValue(host, tfjsonpath.New("go").AtMapKey("default"), knownvalue.StringRegexp(regexp.MustCompile(`^1\.24\.\d+$`))),
					statecheck.ExpectKnownValue(host, tfjsonpath.New("installed"), knownvalue.ListSizeExact(2)),
				},
				Check: resource.ComposeTestCheckFunc(
					checkHostOf(vm, signer, "go version | grep -c 'go1\\.24\\.'", "1"),
					checkHostOf(vm, signer, "go env GOPRIVATE", "git.example.com/*"),
					checkHostOf(vm, signer, "ulimit -n", "65536"),
					recordHost(vm, signer, "stat -c %i /usr/local/go/1.23.10/bin/go", &goInode),
					func(s *terraform.State) (err error) {
						goVersion = s.RootModule().Resources[host].Primary.Attributes["go.default"]
						farm.host, err = tourHost(s, vm, keyFile, signer, hostDir)
						return err
					},
				),
			},
			{
				// Unchanged HCL plans nothing, with the default left to Kiln.
				Config: tour,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				// The VM as a build pool. The build cache seed is made (or
				// found) here for the exact Go version "1.24" resolved to.
				PreConfig: func() {
					farmStart = time.Now()
					farm.local = newLocalBuildOf(t, goVersion)
					farm.seed = farm.local.cacheSeed(t)
				},
				Config:          withPool,
				ConfigVariables: poolVars,
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttr(buildPool, "host.0.ready", "true"),
					func(s *terraform.State) error {
						return resource.TestCheckTypeSetElemAttr(buildPool, "host.0.go_versions.*", goVersion)(s)
					},
				),
			},
			{
				// The build: its image is in the registry with the binary it
				// reported. The plan after the apply is empty (every step's is).
				PreConfig:       func() { seedBuildCache(t, farm.host, farm.seed) },
				Config:          withBuild,
				ConfigVariables: buildVars,
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttr(build, "commit", commit),
					resource.TestCheckResourceAttrPtr(build, "go_version_exact", &goVersion),
					func(s *terraform.State) error {
						attrs := s.RootModule().Resources[build].Primary.Attributes
						t.Logf("the README's build, its build cache seeded, took %s s; the pool and build steps %s",
							attrs["duration_seconds"], time.Since(farmStart).Round(time.Second))
						return farm.checkPushed(attrs)
					},
				),
			},
			{
				// More memory: the VM is updated in place, and what is on it,
				// reached through the VM's SSH attributes, is left alone.
				Config:          grown,
				ConfigVariables: buildVars,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(vm, plancheck.ResourceActionUpdate),
						plancheck.ExpectResourceAction(host, plancheck.ResourceActionNoop),
						plancheck.ExpectResourceAction(buildPool, plancheck.ResourceActionNoop),
						plancheck.ExpectResourceAction(project, plancheck.ResourceActionNoop),
						plancheck.ExpectResourceAction(build, plancheck.ResourceActionNoop),
						plancheck.ExpectKnownValue(vm, tfjsonpath.New("ssh_port"), knownvalue.NotNull()),
					},
				},
				Check: resource.ComposeTestCheckFunc(
					checkDomain(bed, name, true, 2560),
					func(s *terraform.State) error {
						return checkHostOf(vm, signer, "stat -c %i /usr/local/go/1.23.10/bin/go", goInode)(s)
					},
				),
			},
			{
				Config:          grown,
				ConfigVariables: buildVars,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
		},
	})
}

// readmeBackendYAML is the reader's deploy/backend.yaml in the tour.
const readmeBackendYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: backend
spec:
  selector:
    matchLabels:
      app: backend
  template:
    metadata:
      labels:
        app: backend
    spec:
      containers:
      - name: backend
        image: ${image}
`

// tourHost is the tour's VM as the test's own SSH target (runOnHostInput),
// its address and pinned host key read from the state.
func tourHost(s *terraform.State, vm, keyFile string, signer ssh.Signer, dir string) (sharedHost, error) {
	a := s.RootModule().Resources[vm].Primary.Attributes
	port, err := strconv.Atoi(a["ssh_port"])
	if err != nil {
		return sharedHost{}, fmt.Errorf("%s.ssh_port: %w", vm, err)
	}
	h := sharedHost{vm: libvirt.VM{SSHHost: a["ssh_host"], SSHPort: port, SSHHostKey: a["ssh_host_public_key"]},
		keyFile: keyFile, knownHosts: filepath.Join(dir, "known_hosts"), signer: signer}
	return h, h.writeKnownHosts()
}

// recordHost stores what cmd prints on the host, for a later step to compare.
func recordHost(vm string, signer ssh.Signer, cmd string, into *string) resource.TestCheckFunc {
	return func(s *terraform.State) (err error) {
		*into, err = hostOutput(s, vm, signer, cmd)
		return err
	}
}

// checkPushed checks a build's image in the registry: its digest is the
// build's, and its layer holds the binary with the sha256 the build reported.
func (b buildFarmBed) checkPushed(attrs map[string]string) error {
	img, _, err := b.pushedImage(attrs)
	if err != nil {
		return err
	}
	if digest, err := img.Digest(); err != nil || digest.String() != attrs["image_digest"] {
		return fmt.Errorf("the registry has %s (%v), the build reported %s", digest, err, attrs["image_digest"])
	}
	return nil
}

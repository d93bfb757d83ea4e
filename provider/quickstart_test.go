package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	tfjson "github.com/hashicorp/terraform-json"
	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"golang.org/x/crypto/ssh"
	"k8s.io/client-go/kubernetes"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery/history"
	"github.com/kilnhq/terraform-provider-kiln/internal/libvirt"
	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

// What examples/quickstart/main.tf names: one quickstart per test bed.
const (
	quickstartVM      = "kiln-quickstart-1"
	quickstartPool    = "kiln-quickstart"
	quickstartProject = "shop"
	quickstartVersion = "v1.0.0" // its qa_version's default
)

var quickstartServices = []string{"backend", "frontend"}

// TestAccQuickstart applies examples/quickstart/main.tf as written, as make
// quickstart does: its variables set from the test beds as
// scripts/quickstart.sh sets them, the shop's services from
// examples/quickstart/services pushed to their repositories, the farm
// applied first and the build user's Go build cache seeded with the seed
// scripts/quickstart.sh makes, then the whole file. Then the course's fix, as
// make quickstart-fix commits it, and destroy. It replaces the two module
// tests (the go-build-farm and delivery-project modules through module
// blocks): what they asserted is asserted here.
//
//   - The modules' plan-time errors, in plan-only steps before anything
//     exists: the farm on vSphere without its settings, and a default Go
//     version not among those installed.
//   - The farm: one VM, hardened as a Go host (Go on the PATH, no swap, the
//     open-file limit, the build user), ready in the pool with its Go version;
//     the pool's name, labels and build user, the host's Go versions.
//   - The shop: each service built at the commit pushed into an image in the
//     registry, its suite passed with both tests; dev and qa run the builds'
//     images by digest (the Deployments, and the releases' outputs), the
//     version pins them, and qa's release record says it deployed the version;
//     both environments rolled out; the backend, released on the VM by
//     kiln_host_release from the script build, answers /api/buildstamp with
//     its commit's time.
//   - The fix: the plan replaces the frontend's build and test and updates the
//     release to dev, and changes nothing else (the backend's resources, the
//     version, qa, the farm); after it, dev runs the new frontend beside the
//     same backend, qa and the version keep theirs.
//   - Destroy leaves no VM, namespace or project record.
//
// After every apply the plan is empty: the test framework plans after each
// apply, and again after a refresh, and fails on any change.
func TestAccQuickstart(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Libvirt(t)
	b := buildFarmBed{kube: testenv.Kube(t), registry: testenv.Registry(t), name: quickstartProject}
	// The repositories are <git_url>/quickstart-<service>.git: a directory of
	// the test's own keeps them apart from make quickstart's.
	b.git = testenv.GitServer(t).Group(t)
	if err := checkVMGone(bed, quickstartVM)(nil); err != nil {
		t.Fatalf("the quickstart's VM is on this test bed (make quickstart-destroy removes a make quickstart's): %v", err)
	}
	bed.RemoveGuestAtCleanup(t, quickstartVM)
	// The seed is compiled on this machine when the cache lacks it (minutes on
	// a fresh one): beside the VM's boot, not before it.
	seedDone := make(chan struct{})
	var seed string
	var seedErr error
	go func() {
		defer close(seedDone)
		seed, seedErr = quickstartSeed()
	}()
	t.Cleanup(func() { <-seedDone })

	root, mainTF := quickstartLayout(t)
	repos := map[string]*testenv.GitRepo{}
	commits := map[string]string{}
	for _, s := range quickstartServices {
		files, err := testenv.DirFiles(filepath.Join(root, "quickstart", "services", s))
		if err != nil {
			t.Fatal(err)
		}
		repos[s] = b.git.NamedRepo(t, "quickstart-"+s)
		commits[s] = repos[s].Commit(t, "The shop's "+s+", as examples/quickstart ships it", files)
	}
	keyFile, signer := writeLoginKey(t, t.TempDir())
	hostDir := t.TempDir()
	cs := kubeClient(t, b.kube)
	// main.tf requires kilnhq/kiln: the test serves the provider under that
	// address.
	t.Setenv("TF_ACC_PROVIDER_NAMESPACE", "kilnhq")

	// The variables as scripts/quickstart.sh exports them (TF_VAR_*).
	vars := config.Variables{
		"libvirt_uri":       config.StringVariable(bed.URI),
		"pool":              config.StringVariable(bed.Pool),
		"base_volume":       config.StringVariable(bed.BaseVolume),
		"domain_type":       config.StringVariable(bed.DomainType),
		"ssh_key_file":      config.StringVariable(keyFile),
		"kubeconfig":        config.StringVariable(b.kube.Kubeconfig),
		"registry":          config.StringVariable(b.registry.Host),
		"registry_username": config.StringVariable(b.registry.Username),
		"registry_password": config.StringVariable(b.registry.Password),
		"git_url":           config.StringVariable(b.git.URL),
		"git_username":      config.StringVariable(b.git.Username),
		"git_password":      config.StringVariable(b.git.Password),
		"go_version":        config.StringVariable(buildGoVersion),
	}
	// The configurations are directories whose main.tf the framework copies
	// into its working directory, made in root (so ../modules is the copy);
	// their provider blocks make the providers the steps'.
	dir := func(name, content string) func(config.TestStepConfigRequest) string {
		d := filepath.Join(root, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "main.tf"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return config.StaticDirectory(d)
	}
	withFarmArg := func(arg string) string {
		const goVersions = "  go_versions = [var.go_version]\n"
		out := strings.Replace(mainTF, goVersions, goVersions+arg+"\n", 1)
		if out == mainTF {
			t.Fatalf("examples/quickstart/main.tf's module \"farm\" no longer has %q", goVersions)
		}
		return out
	}
	asWritten := config.StaticDirectory(filepath.Join(root, "quickstart"))
	step := func(s resource.TestStep) resource.TestStep {
		s.ProtoV6ProviderFactories = testAccProviders
		s.ConfigVariables = vars
		return s
	}

	var host sharedHost
	var images map[string]string // the first apply's builds, by service
	var fixCommit string
	start := time.Now()
	var farmStart, shopStart time.Time
	defer func() { t.Logf("TestAccQuickstart took %s", time.Since(start).Round(time.Second)) }()
	resource.Test(t, resource.TestCase{
		WorkingDir: root,
		Steps: []resource.TestStep{
			step(resource.TestStep{
				PreConfig:       func() { quickstartK8s(t, root) },
				ConfigDirectory: dir("vsphere", withFarmArg(`  platform = "vsphere"`)),
				PlanOnly:        true,
				ExpectError:     regexp.MustCompile(`platform is "vsphere": set vsphere`),
			}),
			step(resource.TestStep{
				ConfigDirectory: dir("go-default", withFarmArg(`  go_default = "1.23.10"`)),
				PlanOnly:        true,
				ExpectError:     regexp.MustCompile(`go_default must be one of go_versions`),
			}),
			step(resource.TestStep{
				// The farm, as scripts/quickstart.sh applies it first.
				PreConfig:       func() { farmStart = time.Now() },
				ConfigDirectory: dir("farm", quickstartFarmOnly(t, mainTF)),
				ConfigStateChecks: []statecheck.StateCheck{jsonStateIs(func(out map[string]any, s *tfjson.State) error {
					t.Logf("the farm (a VM, a Go host, a pool) took %s", time.Since(farmStart).Round(time.Second))
					var err error
					host, err = quickstartHost(out, keyFile, signer, hostDir)
					if err != nil {
						return err
					}
					return checkQuickstartFarm(s, host)
				})},
			}),
			step(resource.TestStep{
				PreConfig: func() {
					// The quickstart names its project shop, as the delivery
					// examples do: one of them at a time on this cluster, and
					// nothing left of a run that failed before destroy.
					b.kube.Lock(t, "examples")
					removeProject(t, cs, quickstartProject)
					<-seedDone
					if seedErr != nil {
						t.Fatal(seedErr)
					}
					b.seed = seed
					seedBuildCache(t, host, b.seed)
					shopStart = time.Now()
				},
				ConfigDirectory: asWritten,
				ConfigStateChecks: []statecheck.StateCheck{jsonStateIs(func(out map[string]any, s *tfjson.State) error {
					t.Logf("the shop's builds, tests and releases and the host release took %s", time.Since(shopStart).Round(time.Second))
					var err error
					if images, err = checkQuickstartBuilds(b, s, commits); err != nil {
						return err
					}
					if err := checkQuickstartShop(cs, out, s, commits, images, images, 1); err != nil {
						return err
					}
					rec, err := (&history.Secrets{Client: cs, Namespace: controlNamespace}).Get(context.Background(), quickstartProject, "qa", 1)
					if err != nil {
						return err
					}
					if !rec.FromVersion || rec.Version != quickstartVersion || !maps.Equal(rec.Images, images) {
						return fmt.Errorf("qa's release record: version %q (from a version: %t), images %v; want %s's %v",
							rec.Version, rec.FromVersion, rec.Images, quickstartVersion, images)
					}
					b.repo = repos["backend"]
					return checkQuickstartHostRelease(b, host, out, s, commits["backend"])
				})},
			}),
			step(resource.TestStep{
				// make quickstart-fix: the frontend asks the backend at the
				// right path. Only the frontend is built, tested and released
				// again.
				PreConfig: func() {
					shopStart = time.Now()
					path := filepath.Join(root, "quickstart", "services", "frontend", "main.go")
					src, err := os.ReadFile(path)
					if err != nil {
						t.Fatal(err)
					}
					fixed := bytes.Replace(src, []byte(`"/api/build-stamp"`), []byte(`"/api/buildstamp"`), 1)
					if bytes.Equal(fixed, src) {
						t.Fatal(`the frontend no longer asks the backend at "/api/build-stamp": what does make quickstart-fix fix?`)
					}
					fixCommit = repos["frontend"].Commit(t, "frontend: ask the backend for its build stamp at /api/buildstamp",
						map[string][]byte{"main.go": fixed})
				},
				ConfigDirectory: asWritten,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{onlyChanges(map[string]string{
					`module.shop.kiln_build.this["frontend"]`: "replace",
					`module.shop.kiln_test.this["frontend"]`:  "replace",
					"module.shop.kiln_release.dev":            "update",
				})}},
				ConfigStateChecks: []statecheck.StateCheck{jsonStateIs(func(out map[string]any, s *tfjson.State) error {
					t.Logf("the fix took %s", time.Since(shopStart).Round(time.Second))
					fixed := maps.Clone(commits)
					fixed["frontend"] = fixCommit
					dev, err := checkQuickstartBuilds(b, s, fixed)
					if err != nil {
						return err
					}
					if dev["backend"] != images["backend"] || dev["frontend"] == images["frontend"] {
						return fmt.Errorf("after the fix the builds are %v, before it %v: want a new frontend and the same backend", dev, images)
					}
					return checkQuickstartShop(cs, out, s, fixed, dev, images, 2)
				})},
			}),
			// The checks read the state as JSON: the legacy state that
			// CheckDestroy gets has no child modules. So the last step
			// destroys, and what it removed is checked after the test.
			step(resource.TestStep{ConfigDirectory: asWritten, Destroy: true}),
		},
	})
	if t.Failed() {
		return
	}
	err := errors.Join(
		checkVMGone(bed, quickstartVM)(nil),
		checkNamespacesGone(cs, quickstartProject+"-env-dev", quickstartProject+"-env-qa")(nil),
		checkProjectGone(cs, quickstartProject)(nil),
	)
	if err != nil {
		t.Error(err)
	}
}

// quickstartLayout lays examples/quickstart out in a new directory as
// scripts/quickstart.sh's work copy does, quickstart/ beside a copy of
// examples/modules/, and returns that directory and main.tf. The test case's
// working directory is made in it, so main.tf's module sources
// (../modules/go-build-farm) find the copy from there.
func quickstartLayout(t *testing.T) (string, string) {
	t.Helper()
	repo, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, d := range []string{"quickstart", "modules"} {
		if err := os.CopyFS(filepath.Join(root, d), os.DirFS(filepath.Join(repo, "examples", d))); err != nil {
			t.Fatal(err)
		}
	}
	mainTF, err := os.ReadFile(filepath.Join(root, "quickstart", "main.tf"))
	if err != nil {
		t.Fatal(err)
	}
	return root, string(mainTF)
}

// quickstartK8s copies the quickstart's k8s/ into the test's working
// directory (the one directory the framework made in root), where main.tf's
// services_dir ("${path.module}/k8s") points: the framework copies a
// configuration directory's files, not its folders.
func quickstartK8s(t *testing.T, root string) {
	t.Helper()
	work, err := filepath.Glob(filepath.Join(root, "work*"))
	if err != nil || len(work) != 1 {
		t.Fatalf("the test's working directory in %s: %v %v", root, work, err)
	}
	if err := os.CopyFS(filepath.Join(work[0], "k8s"), os.DirFS(filepath.Join(root, "quickstart", "k8s"))); err != nil {
		t.Fatal(err)
	}
}

// quickstartSeed returns the build cache seed make quickstart seeds its build
// VM with: scripts/quickstart.sh seed makes it (or finds it in the cache) and
// prints its path.
func quickstartSeed() (string, error) {
	repo, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	var stderr bytes.Buffer
	cmd := exec.Command("bash", filepath.Join(repo, "scripts", "quickstart.sh"), "seed")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("scripts/quickstart.sh seed: %v\n%s", err, stderr.String())
	}
	seed := strings.TrimSpace(string(out))
	// Seeded for another Go version, the builds would compile the standard
	// library under emulation: correct, but half an hour.
	if !strings.Contains(filepath.Base(seed), "go"+buildGoVersion+"-") {
		return "", fmt.Errorf("scripts/quickstart.sh seeds for another Go version than the test's go_version %s: %s", buildGoVersion, seed)
	}
	return seed, nil
}

// quickstartFarmOnly is main.tf as scripts/quickstart.sh's first apply
// (-target=module.farm) sees it: the settings, the farm, and the outputs that
// only the farm feeds. The test framework has no -target; between the two
// applies the build user's cache is seeded, once the pool has made the user.
func quickstartFarmOnly(t *testing.T, mainTF string) string {
	t.Helper()
	src := []byte(mainTF)
	f, diags := hclsyntax.ParseConfig(src, "main.tf", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("examples/quickstart/main.tf: %s", diags)
	}
	fromFarm := func(tr hcl.Traversal) bool {
		if tr.RootName() == "var" {
			return true
		}
		if tr.RootName() != "module" || len(tr) < 2 {
			return false
		}
		step, ok := tr[1].(hcl.TraverseAttr)
		return ok && step.Name == "farm"
	}
	var kept []string
	for _, block := range f.Body.(*hclsyntax.Body).Blocks {
		keep := false
		switch block.Type {
		case "terraform", "variable", "provider":
			keep = true
		case "module":
			keep = block.Labels[0] == "farm"
		case "output":
			keep = true
			for _, tr := range block.Body.Attributes["value"].Expr.Variables() {
				keep = keep && fromFarm(tr)
			}
		}
		if keep {
			r := block.Range()
			kept = append(kept, string(src[r.Start.Byte:r.End.Byte]))
		}
	}
	out := strings.Join(kept, "\n\n") + "\n"
	if !strings.Contains(out, `module "farm" {`) || !strings.Contains(out, `output "build_host" {`) {
		t.Fatalf("examples/quickstart/main.tf changed shape: its farm alone is\n%s", out)
	}
	return out
}

// quickstartHost is the quickstart's build VM as the test's SSH target, from
// the build_host output (the farm module's hosts).
func quickstartHost(out map[string]any, keyFile string, signer ssh.Signer, dir string) (sharedHost, error) {
	hosts, _ := out["build_host"].(map[string]any)
	h, ok := hosts[quickstartVM].(map[string]any)
	if !ok {
		return sharedHost{}, fmt.Errorf("output build_host is %v, want the VM %s", out["build_host"], quickstartVM)
	}
	if h["ready"] != true || fmt.Sprint(h["go_versions"]) != "["+buildGoVersion+"]" {
		return sharedHost{}, fmt.Errorf("the pool's host is %v, want ready with go_versions [%s]", h, buildGoVersion)
	}
	port, err := strconv.Atoi(fmt.Sprint(h["port"]))
	if err != nil {
		return sharedHost{}, fmt.Errorf("output build_host's port: %w", err)
	}
	address, _ := h["address"].(string)
	hostKey, _ := h["host_key"].(string)
	host := sharedHost{vm: libvirt.VM{SSHHost: address, SSHPort: port, SSHHostKey: hostKey},
		keyFile: keyFile, knownHosts: filepath.Join(dir, "known_hosts"), signer: signer}
	return host, host.writeKnownHosts()
}

// checkQuickstartFarm checks the farm module's pool and Go host in the state,
// and the host as hardened: Go on the PATH, no swap, the open-file limit for
// logins, the pool's build user.
func checkQuickstartFarm(s *tfjson.State, host sharedHost) error {
	pool, err := stateValues(s, "module.farm.kiln_build_pool.this")
	if err != nil {
		return err
	}
	if pool["name"] != quickstartPool || fmt.Sprint(pool["labels"]) != "map[pool:quickstart]" || pool["build_user"] != "kiln-build" {
		return fmt.Errorf("the pool is %v %v, build user %v; want %s {pool=quickstart}, kiln-build", pool["name"], pool["labels"], pool["build_user"], quickstartPool)
	}
	goHost, err := stateValues(s, "module.farm.kiln_go_host.this[0]")
	if err != nil {
		return err
	}
	goBlock, _ := goHost["go"].(map[string]any)
	if fmt.Sprint(goBlock["resolved_versions"]) != "["+buildGoVersion+"]" || goBlock["default"] != buildGoVersion {
		return fmt.Errorf("the Go host's go is %v, want %s only and by default", goBlock, buildGoVersion)
	}
	got, err := loginOutput(host.vm.SSHHost, host.vm.SSHPort, host.vm.SSHHostKey, host.signer,
		"go version | cut -d' ' -f3; swapon --noheadings | wc -l; ulimit -n; id -un kiln-build")
	if err != nil {
		return err
	}
	if want := fmt.Sprintf("go%s\n0\n65536\nkiln-build", buildGoVersion); got != want {
		return fmt.Errorf("on the host: %q, want %q", got, want)
	}
	return nil
}

// checkQuickstartBuilds checks each service's build in the state: built at the
// commit, its image pushed by digest to the registry. It returns the images by
// service.
func checkQuickstartBuilds(b buildFarmBed, s *tfjson.State, commits map[string]string) (map[string]string, error) {
	images := map[string]string{}
	for _, svc := range quickstartServices {
		build, err := stateValues(s, fmt.Sprintf("module.shop.kiln_build.this[%q]", svc))
		if err != nil {
			return nil, err
		}
		ref, _ := build["image_ref"].(string)
		if build["commit"] != commits[svc] || !strings.HasPrefix(ref, b.registry.Host+"/") {
			return nil, fmt.Errorf("the %s build: commit %v, image %q; want commit %s, an image in %s", svc, build["commit"], ref, commits[svc], b.registry.Host)
		}
		digest, err := name.NewDigest(ref, name.Insecure)
		if err != nil {
			return nil, fmt.Errorf("the %s build's image: %w", svc, err)
		}
		if _, err := ggcr.Head(digest, b.auth()); err != nil {
			return nil, fmt.Errorf("the %s build's image is not in the registry: %w", svc, err)
		}
		images[svc] = ref
	}
	return images, nil
}

// checkQuickstartShop checks the shop's outputs and the cluster: the commits
// built and tested, every suite passed with both its tests, dev at revision
// devRevision running dev's images, the version and qa (revision 1) running
// qa's, every workload rolled out.
func checkQuickstartShop(cs kubernetes.Interface, out map[string]any, s *tfjson.State, commits, dev, qa map[string]string, devRevision int) error {
	if got := jsonStrings(out["commits"]); !maps.Equal(got, commits) {
		return fmt.Errorf("output commits is %v, want %v", got, commits)
	}
	tests, _ := out["tests"].(map[string]any)
	for _, svc := range quickstartServices {
		suite, _ := tests[svc].(map[string]any)
		if got := fmt.Sprintf("%v %v/%v, %v failed", suite["status"], suite["passed"], suite["total"], suite["failed"]); got != "passed 2/2, 0 failed" {
			return fmt.Errorf("the %s suite: %s, want passed 2/2, 0 failed", svc, got)
		}
	}
	versions, _ := out["versions"].(map[string]any)
	for env, want := range map[string]struct {
		version  string
		revision int
		images   map[string]string
	}{"dev": {"", devRevision, dev}, "qa": {quickstartVersion, 1, qa}} {
		v, _ := versions[env].(map[string]any)
		if fmt.Sprint(v["revision"]) != strconv.Itoa(want.revision) || !maps.Equal(jsonStrings(v["images"]), want.images) ||
			(want.version != "" && v["version"] != want.version) {
			return fmt.Errorf("output versions.%s is %v, want revision %d with %v (version %q)", env, v, want.revision, want.images, want.version)
		}
		for _, svc := range quickstartServices {
			if err := checkDeployment(cs, quickstartProject+"-env-"+env, svc, 1, want.images[svc])(nil); err != nil {
				return err
			}
		}
	}
	version, err := stateValues(s, "module.shop.kiln_version.this[0]")
	if err != nil {
		return err
	}
	if got := jsonStrings(version["images"]); version["name"] != quickstartVersion || !maps.Equal(got, qa) {
		return fmt.Errorf("the version is %v with %v, want %s with %v", version["name"], got, quickstartVersion, qa)
	}
	status, _ := out["status"].(map[string]any)
	for _, env := range []string{"dev", "qa"} {
		workloads, _ := status[env].(map[string]any)
		for _, svc := range quickstartServices {
			if w, _ := workloads[svc].(map[string]any); w["rolled_out"] != true {
				return fmt.Errorf("output status.%s.%s is %v, want rolled out", env, svc, w)
			}
		}
	}
	return nil
}

// checkQuickstartHostRelease checks the backend released on the build VM:
// healthy, its release the script build's binary at the backend's commit
// (<commit 12>-<sha256 12>), and answering /api/buildstamp there with the
// commit's time (the script build's stamp).
func checkQuickstartHostRelease(b buildFarmBed, host sharedHost, out map[string]any, s *tfjson.State, commit string) error {
	build, err := stateValues(s, "kiln_build.backend_binary")
	if err != nil {
		return err
	}
	files, _ := build["artifact_files"].(map[string]any)
	binary, _ := files["dist/backend"].(map[string]any)
	sum := strings.TrimPrefix(fmt.Sprint(binary["sha256"]), "sha256:")
	if len(sum) != 64 {
		return fmt.Errorf("the script build's dist/backend is %v", files["dist/backend"])
	}
	release := commit[:12] + "-" + sum[:12]
	hosts, _ := out["host_release"].([]any)
	if len(hosts) != 1 {
		return fmt.Errorf("output host_release is %v, want the one pool host", out["host_release"])
	}
	h, _ := hosts[0].(map[string]any)
	if h["release"] != release || h["health"] != "healthy" {
		return fmt.Errorf("the host release on the VM is %v, want release %s, healthy", h, release)
	}
	answer, err := loginOutput(host.vm.SSHHost, host.vm.SSHPort, host.vm.SSHHostKey, host.signer,
		"curl -fsS http://127.0.0.1:8080/api/buildstamp")
	if err != nil {
		return fmt.Errorf("the backend on the VM: %w", err)
	}
	var body struct{ Buildstamp string }
	if err := json.Unmarshal([]byte(answer), &body); err != nil {
		return fmt.Errorf("the backend on the VM answered %q: %w", answer, err)
	}
	c, err := b.commit(commit)
	if err != nil {
		return err
	}
	if want := c.Time.UTC().Format(time.RFC3339); body.Buildstamp != want {
		return fmt.Errorf("the backend on the VM answered /api/buildstamp with %q, want the commit time %q", body.Buildstamp, want)
	}
	return nil
}

// onlyChanges is a plan check: the resources at the addresses plan the
// actions given ("replace", "update"), and every other resource none (data
// sources may be read).
func onlyChanges(want map[string]string) plancheck.PlanCheck {
	return planCheckFunc(func(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
		var errs []error
		seen := map[string]bool{}
		for _, rc := range req.Plan.ResourceChanges {
			a := rc.Change.Actions
			got := fmt.Sprint([]tfjson.Action(a))
			switch {
			case a.NoOp():
				got = "no-op"
			case a.Replace():
				got = "replace"
			case a.Update():
				got = "update"
			case a.Read() && rc.Mode == tfjson.DataResourceMode:
				got = "read"
			}
			w, listed := want[rc.Address]
			seen[rc.Address] = listed
			if listed && got != w {
				errs = append(errs, fmt.Errorf("%s: %s, want %s", rc.Address, got, w))
			}
			if !listed && got != "no-op" && got != "read" {
				errs = append(errs, fmt.Errorf("%s: %s, want no change", rc.Address, got))
			}
		}
		for addr, w := range want {
			if !seen[addr] {
				errs = append(errs, fmt.Errorf("%s: not in the plan, want %s", addr, w))
			}
		}
		resp.Error = errors.Join(errs...)
	})
}

// jsonStateIs is a state check of the state as JSON, with the root module's
// outputs: the legacy state that Check gets has no child modules.
type jsonStateIs func(outputs map[string]any, state *tfjson.State) error

func (check jsonStateIs) CheckState(_ context.Context, req statecheck.CheckStateRequest, resp *statecheck.CheckStateResponse) {
	if req.State == nil || req.State.Values == nil {
		resp.Error = errors.New("no state")
		return
	}
	outputs := map[string]any{}
	for k, o := range req.State.Values.Outputs {
		outputs[k] = o.Value
	}
	resp.Error = check(outputs, req.State)
}

// stateValues returns the attribute values of the resource at addr, in the
// root module or a child module, from the state as JSON.
func stateValues(s *tfjson.State, addr string) (map[string]any, error) {
	var find func(m *tfjson.StateModule) map[string]any
	find = func(m *tfjson.StateModule) map[string]any {
		if m == nil {
			return nil
		}
		for _, r := range m.Resources {
			if r.Address == addr {
				return r.AttributeValues
			}
		}
		for _, c := range m.ChildModules {
			if v := find(c); v != nil {
				return v
			}
		}
		return nil
	}
	if v := find(s.Values.RootModule); v != nil {
		return v, nil
	}
	return nil, fmt.Errorf("%s is not in the state", addr)
}

// jsonStrings is a JSON object of strings as a map.
func jsonStrings(v any) map[string]string {
	obj, _ := v.(map[string]any)
	out := make(map[string]string, len(obj))
	for k, e := range obj {
		out[k] = fmt.Sprint(e)
	}
	return out
}

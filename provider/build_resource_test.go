package provider

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcr "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/hashicorp/terraform-plugin-testing/helper/acctest"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kilnhq/terraform-provider-kiln/internal/gitsource"
	"github.com/kilnhq/terraform-provider-kiln/internal/gotoolchain"
	"github.com/kilnhq/terraform-provider-kiln/internal/oci"
	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

const (
	buildAddr     = "kiln_build.backend"
	buildPoolAddr = "kiln_build_pool.test"
	// buildGoVersion is a toolchain the tests' cache already holds.
	buildGoVersion = "1.24.4"
)

// buildFarmBed is what the build farm test runs against: the shared guest,
// the cluster, the registry and a repository holding the sample service.
type buildFarmBed struct {
	host     sharedHost
	kube     testenv.KubeBed
	registry testenv.RegistryBed
	git      testenv.GitBed
	repo     *testenv.GitRepo
	name     string // the project's and pool's name
	// proxy is the module proxy as the guest reaches it: plain HTTP on this
	// machine, forwarding to proxy.golang.org.
	proxy string
	local localBuild
	seed  string // the build cache seed (localBuild.cacheSeed)
}

// newBuildFarmBed is the test beds a build test uses (the cluster, the
// registry, the git server), a project and pool name with prefix, and the
// module proxy as the guest reaches it.
func newBuildFarmBed(t *testing.T, prefix string) buildFarmBed {
	t.Helper()
	return buildFarmBed{
		kube: testenv.Kube(t), registry: testenv.Registry(t), git: testenv.GitServer(t),
		name:  acctest.RandomWithPrefix(prefix),
		proxy: strings.Replace(testenv.StartModuleProxy(t, "https://proxy.golang.org"), "127.0.0.1", "10.0.2.2", 1),
	}
}

// config is the farm: the pool, the backend built from main and released to
// the project's dev environment by digest, and extra.
func (b buildFarmBed) config(extra string) string {
	return b.pool() + fmt.Sprintf(`
resource "kiln_build" "backend" {
  project    = kiln_project.shop.name
  service    = "backend"
  go_version = "1.24"
  source {
    git {
      url      = %[1]q
      ref      = "main"
      username = %[2]q
      password = %[3]q
    }
  }
  go {
    package = "."
    ldflags = "-X main.buildStamp={{.Git.CommitDate}}"
  }
  depends_on = [kiln_build_pool.test]
}

resource "kiln_environment" "dev" {
  project = kiln_project.shop.name
  name    = "dev"
}

resource "kiln_release" "dev" {
  project     = kiln_project.shop.name
  environment = kiln_environment.dev.name
  version     = kiln_build.backend.commit
  services    = { backend = kiln_build.backend.image_ref }
}
%[4]s`, b.repo.URL, b.git.Username, b.git.Password, extra)
}

// pool is the guest as a Go host and a pool of one, and a project whose
// backend service is a Deployment.
func (b buildFarmBed) pool() string {
	return fmt.Sprintf(`
provider "kiln" {
  kubernetes {
    config_path = %[1]q
  }
  registry {
    url      = %[2]q
    username = %[3]q
    password = %[4]q
    insecure = true
  }
  ssh {
    user             = "debian"
    private_key      = file(%[5]q)
    known_hosts_file = %[6]q
  }
}

resource "kiln_go_host" "test" {
  ssh {
    host     = %[7]q
    port     = %[8]d
    host_key = %[9]q
  }
  go {
    versions = [%[10]q]
    default  = %[10]q
  }
  env = { GOPROXY = %[13]q }
  verify {
    build = false
  }
  # The guest is shared by this process's tests: the next one starts from here.
  remove_on_destroy = false
}

resource "kiln_project" "shop" {
  name = %[11]q
  services = {
    backend = <<-YAML
%[12]s
    YAML
  }
  variables         = { node_type = "kwok", greeting = "hello" }
  image_rule        = "%[11]s/{{.Service}}:{{.Timestamp}}-{{.Branch}}"
  build_pool_labels = { pool = %[11]q }
}

resource "kiln_build_pool" "test" {
  name   = %[11]q
  labels = { pool = %[11]q }
  host {
    ssh {
      host     = %[7]q
      port     = %[8]d
      host_key = %[9]q
    }
  }
  depends_on = [kiln_go_host.test]
}
`, b.kube.Kubeconfig, b.registry.Host, b.registry.Username, b.registry.Password,
		b.host.keyFile, b.host.knownHosts, b.host.vm.SSHHost, b.host.vm.SSHPort, b.host.vm.SSHHostKey,
		buildGoVersion, b.name, indent(fmt.Sprintf(deploymentTemplate, "backend")), b.proxy)
}

// standaloneBuild is a kiln_build named name from url's main: a Go build of
// the root package, or with script, a script build with artifacts.
func (b buildFarmBed) standaloneBuild(resourceName, buildName, url, script string, artifacts ...string) string {
	body := `go {
    package = "."
  }`
	if script != "" {
		body = fmt.Sprintf("script    = %q\n  artifacts = %s", script, hclList(artifacts))
	}
	return fmt.Sprintf(`
resource "kiln_build" %[1]q {
  name        = %[2]q
  go_version  = %[3]q
  pool_labels = { pool = %[4]q }
  source {
    git {
      url      = %[5]q
      ref      = "main"
      username = %[6]q
      password = %[7]q
    }
  }
  %[8]s
  depends_on = [kiln_build_pool.test]
}
`, resourceName, buildName, buildGoVersion, b.name, url, b.git.Username, b.git.Password, body)
}

func (b buildFarmBed) auth() ggcr.Option {
	return ggcr.WithAuth(authn.FromConfig(authn.AuthConfig{Username: b.registry.Username, Password: b.registry.Password}))
}

// TestAccBuild_farm is the build farm on one guest: the pool registered (the
// build user on the host, the record in the cluster), the sample built from
// main into an image whose binary answers /api/buildstamp with the commit
// time and released by digest, the same commit built on this machine with the
// same toolchain giving the same digest, a new commit rebuilt and released in
// the same apply, a script build's artifacts, a build that does not compile,
// an image deleted out of band, plan-time errors, and the pool imported.
//
// The build user's Go build cache is seeded before the first build
// (localBuild.cacheSeed): without it, that build compiles the standard
// library under emulation, most of half an hour. So the guest compiles the
// sample's own package and links; the standard library's objects it links are
// this machine's.
func TestAccBuild_farm(t *testing.T) {
	testAccPreCheck(t)
	// Everything else first: the shared guest may still be booting.
	b := newBuildFarmBed(t, "farm")
	b.local = newLocalBuild(t)
	b.seed = b.local.cacheSeed(t)
	b.repo = b.git.NewRepo(t)
	first := b.repo.Commit(t, "the sample backend", testenv.SampleService(t))
	broken := b.git.NewRepo(t)
	broken.Commit(t, "does not compile", map[string][]byte{
		"go.mod":  []byte("module example.com/broken\n\ngo 1.24\n"),
		"main.go": []byte("package main\n\nfunc main() { undefinedThing() }\n"),
	})
	b.host = goHostGuest(t)
	cs := kubeClient(t, b.kube)
	ns := b.name + "-env-dev"
	var firstDigest string
	second, secondImage := "", ""
	start := time.Now()
	defer func() { t.Logf("TestAccBuild_farm took %s", time.Since(start).Round(time.Second)) }()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: func(s *terraform.State) error {
			_, err := cs.CoreV1().Secrets("kiln-system").Get(context.Background(), "kiln-pool-"+b.name, metav1.GetOptions{})
			if err == nil {
				return errors.New("the pool's record outlived the pool")
			}
			return checkNamespacesGone(cs, ns)(s)
		},
		Steps: []resource.TestStep{
			{
				Config: b.pool(),
				Check: resource.ComposeTestCheckFunc(
					b.host.check("id -un kiln-build && sudo -n stat -c %U /home/kiln-build/workspace /home/kiln-build/.cache/go-build", "kiln-build\nkiln-build\nkiln-build"),
					b.host.check("sudo -n -u kiln-build sudo -n true 2>/dev/null && echo root || echo unprivileged", "unprivileged"),
					resource.TestCheckResourceAttr(buildPoolAddr, "host.0.ready", "true"),
					resource.TestCheckTypeSetElemAttr(buildPoolAddr, "host.0.go_versions.*", buildGoVersion),
					resource.TestCheckResourceAttr(buildPoolAddr, "host.0.arch", "amd64"),
					func(*terraform.State) error {
						sec, err := cs.CoreV1().Secrets("kiln-system").Get(context.Background(), "kiln-pool-"+b.name, metav1.GetOptions{})
						if err != nil {
							return err
						}
						if sec.Labels["kiln.dev/kind"] != "build-pool" || sec.Type != "kiln.dev/buildfarm.v1" {
							return fmt.Errorf("pool record: labels %v, type %s", sec.Labels, sec.Type)
						}
						return nil
					},
				),
			},
			{
				// The build and its release; the plan after the apply (every
				// step's) is empty.
				PreConfig: func() { seedBuildCache(t, b.host, b.seed) },
				Config:    b.config(""),
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttr(buildAddr, "commit", first),
					resource.TestCheckResourceAttr(buildAddr, "build_number", "1"),
					resource.TestCheckResourceAttr(buildAddr, "go_version_exact", buildGoVersion),
					resource.TestMatchResourceAttr(buildAddr, "tags.0", regexp.MustCompile(`^[0-9]{14}-main$`)),
					resource.TestMatchResourceAttr(buildAddr, "image_ref", regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)),
					func(s *terraform.State) error {
						attrs := s.RootModule().Resources[buildAddr].Primary.Attributes
						t.Logf("the first build on the guest, its build cache seeded, took %s s", attrs["duration_seconds"])
						firstDigest = attrs["image_digest"]
						return b.checkImage(t, attrs, first)
					},
					func(s *terraform.State) error {
						return b.checkElsewhere(t, s.RootModule().Resources[buildAddr].Primary.Attributes, first)
					},
					b.checkReleased(cs, ns),
				),
			},
			{
				// A new commit on main: the plan rebuilds; and a script build.
				PreConfig: func() {
					files := testenv.SampleService(t)
					files["main.go"] = append(files["main.go"], []byte("\n// A second commit.\n")...)
					second = b.repo.Commit(t, "a second commit", files)
				},
				Config: b.config(b.standaloneBuild("tool", b.name+"-tool", b.repo.URL,
					"mkdir -p dist && go version > dist/go-version && cp go.mod dist/go.mod", "dist/go-version", "dist/go.mod")),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(buildAddr, plancheck.ResourceActionReplace),
					plancheck.ExpectResourceAction(releaseAddr, plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeTestCheckFunc(
					func(s *terraform.State) error {
						attrs := s.RootModule().Resources[buildAddr].Primary.Attributes
						secondImage = attrs["image_ref"]
						if attrs["commit"] != second || attrs["build_number"] != "2" || attrs["image_digest"] == firstDigest {
							return fmt.Errorf("after a new commit: commit %s, number %s, digest %s (was %s)",
								attrs["commit"], attrs["build_number"], attrs["image_digest"], firstDigest)
						}
						return b.checkImage(t, attrs, second)
					},
					b.checkReleased(cs, ns),
					resource.TestCheckResourceAttr(releaseAddr, "revision", "2"),
					resource.TestCheckResourceAttr("kiln_build.tool", "artifact_files.dist/go-version.size", "32"),
					oneAfterTheOther(buildAddr, "kiln_build.tool"),
					func(s *terraform.State) error {
						return b.checkArtifacts(s.RootModule().Resources["kiln_build.tool"].Primary.Attributes)
					},
				),
			},
			{
				// A build that does not compile fails naming host, step and
				// compiler output; nothing is pushed; the record says failed.
				Config:      b.config(b.standaloneBuild("broken", b.name+"-broken", broken.URL, "")),
				ExpectError: wrappedRegexp(`failed in step "go build" (exit code 1)`, "undefined: undefinedThing"),
			},
			{
				// The state is unchanged: without the broken build, nothing to do.
				PreConfig: func() {
					sec, err := cs.CoreV1().Secrets("kiln-system").Get(context.Background(), "kiln-build-"+b.name+"-broken-1", metav1.GetOptions{})
					if err != nil {
						t.Fatal(err)
					}
					if sec.Labels["kiln.dev/status"] != "failed" {
						t.Fatalf("the failed build's record says %q", sec.Labels["kiln.dev/status"])
					}
					repo, err := name.NewRepository(b.registry.Host+"/"+b.name+"-broken", name.Insecure)
					if err != nil {
						t.Fatal(err)
					}
					if tags, err := ggcr.List(repo, b.auth()); err == nil && len(tags) > 0 {
						t.Fatalf("the failed build pushed %v", tags)
					}
				},
				Config:   b.config(""),
				PlanOnly: true,
			},
			// Plan-time errors name the field.
			{Config: b.config(strings.Replace(b.standaloneBuild("x", b.name+"-x", b.repo.URL, ""), `ref      = "main"`, `ref      = "no-such-branch"`, 1)),
				PlanOnly: true, ExpectError: wrappedRegexp("source.git.ref", "no such branch")},
			{Config: b.config(strings.Replace(b.standaloneBuild("x", b.name+"-x", b.repo.URL, ""), `go_version  = "`+buildGoVersion+`"`, `go_version  = "1.19"`, 1)),
				PlanOnly: true, ExpectError: wrappedRegexp("go_version", "has Go 1.19")},
			// No pool with the labels: a warning at plan (the pool may come in
			// the same apply), an error when the build runs.
			{Config: b.config(strings.Replace(b.standaloneBuild("x", b.name+"-x", b.repo.URL, ""), `pool_labels = { pool = "`+b.name+`" }`, `pool_labels = { pool = "nope" }`, 1)),
				ExpectError: wrappedRegexp("pool_labels", "no build pool has the labels {pool=nope}")},
			{Config: b.config(`
resource "kiln_build" "frontend" {
  project    = kiln_project.shop.name
  service    = "frontend"
  go_version = "1.24"
  source {
    path = "."
  }
  go {
    package = "."
  }
}`), PlanOnly: true, ExpectError: wrappedRegexp("service", `has no service "frontend"`)},
			{
				ResourceName:            buildPoolAddr,
				ImportState:             true,
				ImportStateId:           b.name,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"host.0.ssh"},
			},
			{
				// The image deleted from the registry: the next plan rebuilds.
				PreConfig: func() {
					ref, err := name.NewDigest(secondImage, name.Insecure)
					if err != nil {
						t.Fatal(err)
					}
					if err := ggcr.Delete(ref, b.auth()); err != nil {
						t.Fatalf("delete the image: %v", err)
					}
				},
				Config:             b.config(""),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
		},
	})
}

// seedBuildCache unpacks a build cache seed (a tar.gz of a Go build cache)
// into the build user's GOCACHE on a pool host, as the build user. The
// entries' times are set to now (tar -m): Go trims entries unused for five
// days by their modification time.
func seedBuildCache(t *testing.T, host sharedHost, seedFile string) {
	t.Helper()
	seed, err := os.Open(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	defer seed.Close()
	start := time.Now()
	runOnHostInput(t, host, `runuser -u kiln-build -- tar -xzmf - -C "$(getent passwd kiln-build | cut -d: -f6)/.cache/go-build"`, seed)
	t.Logf("build cache seeded on the guest in %s", time.Since(start).Round(time.Second))
}

// checkReleased checks that the release's Deployment of the backend runs the
// build's image, by digest.
func (b buildFarmBed) checkReleased(cs kubernetes.Interface, ns string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		ref := s.RootModule().Resources[buildAddr].Primary.Attributes["image_ref"]
		return checkDeployment(cs, ns, "backend", 1, ref)(s)
	}
}

// pushedImage fetches the build's image from the registry and returns it
// with the binary its one layer holds, checked against the sha256 the build
// reported.
func (b buildFarmBed) pushedImage(attrs map[string]string) (v1.Image, []byte, error) {
	ref, err := name.NewDigest(attrs["image_ref"], name.Insecure)
	if err != nil {
		return nil, nil, err
	}
	img, err := ggcr.Image(ref, b.auth())
	if err != nil {
		return nil, nil, fmt.Errorf("the image is not in the registry: %w", err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		return nil, nil, fmt.Errorf("layers: %d, %v", len(layers), err)
	}
	binary, err := layerFile(layers[0], "ko-app/backend")
	if err != nil {
		return nil, nil, err
	}
	sum := sha256.Sum256(binary)
	if got := hex.EncodeToString(sum[:]); got != attrs["binary_sha256"] {
		return nil, nil, fmt.Errorf("the layer's binary has sha256 %s, the build reported %s", got, attrs["binary_sha256"])
	}
	return img, binary, nil
}

// checkImage checks the build's image in the registry: its layer holds the
// binary with the reported sha256, and that binary, run here, answers
// /api/buildstamp with the commit's time.
func (b buildFarmBed) checkImage(t *testing.T, attrs map[string]string, commit string) error {
	_, binary, err := b.pushedImage(attrs)
	if err != nil {
		return err
	}
	path := filepath.Join(t.TempDir(), "backend")
	if err := os.WriteFile(path, binary, 0o755); err != nil {
		return err
	}
	stamp, err := runBuildStamp(path)
	if err != nil {
		return err
	}
	c, err := b.commit(commit)
	if err != nil {
		return err
	}
	if want := c.Time.UTC().Format(time.RFC3339); stamp != want {
		return fmt.Errorf("/api/buildstamp answered %q, want the commit time %q", stamp, want)
	}
	return nil
}

func (b buildFarmBed) commit(hash string) (gitsource.Commit, error) {
	return b.repository().Archive(context.Background(), hash, io.Discard)
}

func (b buildFarmBed) repository() gitsource.Repository {
	return gitsource.Repository{URL: b.repo.URL, Credentials: gitsource.Credentials{Username: b.git.Username, Password: b.git.Password}}
}

func layerFile(l v1.Layer, path string) ([]byte, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("%s in the layer: %w", path, err)
		}
		if hdr.Name == path {
			return io.ReadAll(tr)
		}
	}
}

// runBuildStamp runs the sample backend and asks it for its build stamp.
func runBuildStamp(binary string) (string, error) {
	port, err := testenv.FreeLocalPort()
	if err != nil {
		return "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(binary, "-listen", addr)
	if err := cmd.Start(); err != nil {
		return "", err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var resp *http.Response
	for range 50 {
		if resp, err = http.Get("http://" + addr + "/api/buildstamp"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct{ Buildstamp string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", err
	}
	return body.Buildstamp, nil
}

// checkElsewhere builds the same commit on this machine — another machine,
// another user, another workspace path, its own copy of the seeded build cache
// — with Kiln's build script and the same verified toolchain, assembles the
// image the same way, and expects the guest's digest.
func (b buildFarmBed) checkElsewhere(t *testing.T, attrs map[string]string, commit string) error {
	ctx := context.Background()
	home := t.TempDir()
	cache := filepath.Join(home, ".cache", "go-build")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return err
	}
	if out, err := exec.Command("tar", "-xzf", b.seed, "-C", cache).CombinedOutput(); err != nil {
		return fmt.Errorf("unpack the build cache seed: %v: %s", err, out)
	}
	var src bytes.Buffer
	c, err := b.repository().Archive(ctx, commit, &src)
	if err != nil {
		return err
	}
	data, err := b.local.run(home, src.Bytes(), c.Time, "-X main.buildStamp="+c.Time.UTC().Format(time.RFC3339))
	if err != nil {
		return err
	}
	binary := filepath.Join(home, "backend")
	if err := os.WriteFile(binary, data, 0o755); err != nil {
		return err
	}
	img, err := (oci.Registry{}).Assemble(ctx, oci.Image{Binary: binary, Name: "backend", Created: c.Time})
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	if digest.String() != attrs["image_digest"] {
		sum := sha256.Sum256(data)
		return fmt.Errorf("built here: %s (binary %x), on the guest: %s (binary %s)", digest, sum, attrs["image_digest"], attrs["binary_sha256"])
	}
	t.Logf("commit %s: digest %s on the guest and on this machine", commit[:12], digest)
	return nil
}

// localBuild runs Kiln's build script on this machine, as a pool host runs it
// (internal/buildfarm/scripts/build.sh), with the verified toolchain the
// tests' pool host gets.
type localBuild struct {
	version   string // exact
	script    []byte
	toolchain gotoolchain.Artifact
	goroot    string
}

func newLocalBuild(t *testing.T) localBuild {
	t.Helper()
	return newLocalBuildOf(t, buildGoVersion)
}

// newLocalBuildOf is newLocalBuild with the exact Go version a pool host has.
func newLocalBuildOf(t *testing.T, version string) localBuild {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join(root, "internal", "buildfarm", "scripts", "build.sh"))
	if err != nil {
		t.Fatal(err)
	}
	fetcher := &gotoolchain.Fetcher{Cache: &gotoolchain.Cache{Dir: filepath.Join(testenv.CacheDir(), "toolchains")}}
	archive, err := fetcher.FromModuleProxy(context.Background(), gotoolchain.ModuleProxy{}, version, "linux", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-xzf", archive.Path, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("unpack go%s: %v: %s", version, err, out)
	}
	return localBuild{version: version, script: script, toolchain: archive, goroot: filepath.Join(dir, "go")}
}

// run builds the root package of the source tar src in build.sh's go mode
// with home as the build user's home (the module and build caches under it),
// and returns the binary. The environment is this process's without its Go
// settings, as a build user's login has none.
func (l localBuild) run(home string, src []byte, epoch time.Time, ldflags string) ([]byte, error) {
	ws := filepath.Join(home, "workspace")
	for _, d := range []string{"slots", "builds"} {
		if err := os.MkdirAll(filepath.Join(ws, d), 0o755); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command("bash", "-c", string(l.script), "kiln", ws, "1", "0", l.goroot,
		strconv.FormatInt(epoch.Unix(), 10), "go", ".", "backend", ldflags, "", "0")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GO") && !strings.HasPrefix(kv, "CGO_") && !strings.HasPrefix(kv, "XDG_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Standard input stays open until the command ends, as Kiln keeps it: at
	// its end, build.sh kills the build.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	fmt.Fprintf(stdin, "0\n%d\n", len(src))
	_, _ = stdin.Write(src)
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("build here: %v\n%s", err, stderr.String())
	}
	tr := tar.NewReader(&stdout)
	if _, err := tr.Next(); err != nil {
		return nil, err
	}
	return io.ReadAll(tr)
}

// cacheSeed returns a tar.gz of a Go build cache holding the standard library
// and the sample service's dependencies as build.sh compiles them, made here
// once and kept in the test cache. Go keys its cache entries by the compiler's
// version, the flags and the environment that change code, and the inputs'
// contents, not by their paths (build.sh builds with -trimpath), so a pool
// host's first build finds them instead of compiling the standard library
// under emulation (about 28 minutes on this kind of machine). The name is
// derived from what determines the entries: the toolchain archive, build.sh
// (its flags and environment) and the sample's go.mod and go.sum.
func (l localBuild) cacheSeed(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	sample := filepath.Join(root, "internal", "testenv", "sample")
	h := sha256.New()
	fmt.Fprintf(h, "toolchain %s\nbuild.sh %x\n", l.toolchain.SHA256, sha256.Sum256(l.script))
	for _, f := range []string{"go.mod", "go.sum"} {
		data, err := os.ReadFile(filepath.Join(sample, f))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s %x\n", f, sha256.Sum256(data))
	}
	seed := filepath.Join(testenv.CacheDir(), "build-cache-seeds", fmt.Sprintf("go%s-%x.tar.gz", l.version, h.Sum(nil)[:16]))
	if _, err := os.Stat(seed); err == nil {
		return seed
	}
	start := time.Now()
	var src bytes.Buffer
	if err := gitsource.ArchiveDir(sample, &src); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if _, err := l.run(home, src.Bytes(), gitsource.DirEpoch, ""); err != nil {
		t.Fatalf("build cache seed: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(seed), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := fmt.Sprintf("%s.%d.tmp", seed, os.Getpid())
	if out, err := exec.Command("tar", "-czf", tmp, "-C", filepath.Join(home, ".cache", "go-build"), ".").CombinedOutput(); err != nil {
		t.Fatalf("build cache seed: %v: %s", err, out)
	}
	if err := os.Rename(tmp, seed); err != nil {
		t.Fatal(err)
	}
	t.Logf("build cache seed %s made in %s", filepath.Base(seed), time.Since(start).Round(time.Second))
	return seed
}

// checkArtifacts fetches each file of a script build from the registry and
// checks its sha256.
func (b buildFarmBed) checkArtifacts(attrs map[string]string) error {
	for _, p := range []string{"dist/go-version", "dist/go.mod"} {
		ref, err := name.NewDigest(attrs["artifact_files."+p+".ref"], name.Insecure)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		l, err := ggcr.Layer(ref, b.auth())
		if err != nil {
			return err
		}
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != attrs["artifact_files."+p+".sha256"] {
			return fmt.Errorf("%s: fetched sha256 %s, recorded %s", p, got, attrs["artifact_files."+p+".sha256"])
		}
		if p == "dist/go-version" && !strings.HasPrefix(string(data), "go version go"+buildGoVersion+" ") {
			return fmt.Errorf("dist/go-version: %q", data)
		}
	}
	return nil
}

var slotTimes = regexp.MustCompile(`slot 1 (taken|freed) at ([0-9]+)`)

// oneAfterTheOther checks that two builds on a host of concurrency 1 held
// its slot one after the other: the slot times in their logs do not overlap.
func oneAfterTheOther(a, b string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		var spans [2][2]int64
		for i, addr := range []string{a, b} {
			tail := s.RootModule().Resources[addr].Primary.Attributes["log_tail"]
			for _, m := range slotTimes.FindAllStringSubmatch(tail, -1) {
				n, _ := strconv.ParseInt(m[2], 10, 64)
				if m[1] == "taken" {
					spans[i][0] = n
				} else {
					spans[i][1] = n
				}
			}
			if spans[i][0] == 0 || spans[i][1] == 0 {
				return fmt.Errorf("%s: no slot times in its log:\n%s", addr, tail)
			}
		}
		if spans[0][0] < spans[1][1] && spans[1][0] < spans[0][1] {
			return fmt.Errorf("two builds held the one slot at once: %v and %v", spans[0], spans[1])
		}
		return nil
	}
}

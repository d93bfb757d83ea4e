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
	"net"
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
}

// config is the farm: the guest as a Go host and a pool of one, a project
// with the backend service, the backend built from main, and extra.
func (b buildFarmBed) config(extra string) string {
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
  env = { GOPROXY = %[16]q }
  verify {
    build = false
  }
  # The guest is shared by this process's tests: the next one starts from here.
  remove_on_destroy = false
}

resource "kiln_project" "shop" {
  name       = %[11]q
  services   = { backend = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: backend\n" }
  image_rule = "%[11]s/{{.Service}}:{{.Timestamp}}-{{.Branch}}"
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

resource "kiln_build" "backend" {
  project    = kiln_project.shop.name
  service    = "backend"
  go_version = "1.24"
  source {
    git {
      url      = %[12]q
      ref      = "main"
      username = %[13]q
      password = %[14]q
    }
  }
  go {
    package = "."
    ldflags = "-X main.buildStamp={{.Git.CommitDate}}"
  }
  depends_on = [kiln_build_pool.test]
}
%[15]s`, b.kube.Kubeconfig, b.registry.Host, b.registry.Username, b.registry.Password,
		b.host.keyFile, b.host.knownHosts, b.host.vm.SSHHost, b.host.vm.SSHPort, b.host.vm.SSHHostKey,
		buildGoVersion, b.name, b.repo.URL, b.git.Username, b.git.Password, extra, b.proxy)
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
// time, the same commit built on this machine with the same toolchain giving
// the same digest, a new commit rebuilt, a script build's artifacts, a build
// that does not compile, an image deleted out of band, plan-time errors, and
// the pool imported.
func TestAccBuild_farm(t *testing.T) {
	testAccPreCheck(t)
	b := buildFarmBed{host: goHostGuest(t), kube: testenv.Kube(t), registry: testenv.Registry(t), git: testenv.GitServer(t)}
	b.name = acctest.RandomWithPrefix("farm")
	b.proxy = strings.Replace(testenv.StartModuleProxy(t, "https://proxy.golang.org"), "127.0.0.1", "10.0.2.2", 1)
	b.repo = b.git.NewRepo(t)
	first := b.repo.Commit(t, "the sample backend", testenv.SampleService(t))
	broken := b.git.NewRepo(t)
	broken.Commit(t, "does not compile", map[string][]byte{
		"go.mod":  []byte("module example.com/broken\n\ngo 1.24\n"),
		"main.go": []byte("package main\n\nfunc main() { undefinedThing() }\n"),
	})
	cs := kubeClient(t, b.kube)
	var firstDigest string
	second := ""
	start := time.Now()
	defer func() { t.Logf("TestAccBuild_farm took %s", time.Since(start).Round(time.Second)) }()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: func(*terraform.State) error {
			_, err := cs.CoreV1().Secrets("kiln-system").Get(context.Background(), "kiln-pool-"+b.name, metav1.GetOptions{})
			if err == nil {
				return errors.New("the pool's record outlived the pool")
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config: b.config(""),
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
					resource.TestCheckResourceAttr(buildAddr, "commit", first),
					resource.TestCheckResourceAttr(buildAddr, "build_number", "1"),
					resource.TestCheckResourceAttr(buildAddr, "go_version_exact", buildGoVersion),
					resource.TestMatchResourceAttr(buildAddr, "tags.0", regexp.MustCompile(`^[0-9]{14}-main$`)),
					func(s *terraform.State) error {
						attrs := s.RootModule().Resources[buildAddr].Primary.Attributes
						firstDigest = attrs["image_digest"]
						return b.checkImage(t, attrs, first)
					},
					func(s *terraform.State) error {
						return b.checkElsewhere(t, s.RootModule().Resources[buildAddr].Primary.Attributes, first)
					},
				),
			},
			{
				Config:           b.config(""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
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
				}},
				Check: resource.ComposeTestCheckFunc(
					func(s *terraform.State) error {
						attrs := s.RootModule().Resources[buildAddr].Primary.Attributes
						if attrs["commit"] != second || attrs["build_number"] != "2" || attrs["image_digest"] == firstDigest {
							return fmt.Errorf("after a new commit: commit %s, number %s, digest %s (was %s)",
								attrs["commit"], attrs["build_number"], attrs["image_digest"], firstDigest)
						}
						return b.checkImage(t, attrs, second)
					},
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
				Config: b.config(""),
				Check: func(*terraform.State) error {
					sec, err := cs.CoreV1().Secrets("kiln-system").Get(context.Background(), "kiln-build-"+b.name+"-broken-1", metav1.GetOptions{})
					if err != nil {
						return err
					}
					if sec.Labels["kiln.dev/status"] != "failed" {
						return fmt.Errorf("the failed build's record says %q", sec.Labels["kiln.dev/status"])
					}
					repo, err := name.NewRepository(b.registry.Host+"/"+b.name+"-broken", name.Insecure)
					if err != nil {
						return err
					}
					if tags, err := ggcr.List(repo, b.auth()); err == nil && len(tags) > 0 {
						return fmt.Errorf("the failed build pushed %v", tags)
					}
					return nil
				},
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
					ref, err := name.NewDigest(b.registry.Host+"/"+b.name+"/backend@"+secondDigest(t, b), name.Insecure)
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

// secondDigest is the digest of the backend image of the repository's main
// as the registry holds it under its tag.
func secondDigest(t *testing.T, b buildFarmBed) string {
	t.Helper()
	repo, err := name.NewRepository(b.registry.Host+"/"+b.name+"/backend", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := ggcr.List(repo, b.auth())
	if err != nil || len(tags) == 0 {
		t.Fatalf("tags of %s: %v %v", repo, tags, err)
	}
	desc, err := ggcr.Head(repo.Tag(tags[len(tags)-1]), b.auth())
	if err != nil {
		t.Fatal(err)
	}
	return desc.Digest.String()
}

// checkImage checks the build's image in the registry: its layer holds the
// binary with the reported sha256, and that binary, run here, answers
// /api/buildstamp with the commit's time.
func (b buildFarmBed) checkImage(t *testing.T, attrs map[string]string, commit string) error {
	ref, err := name.NewDigest(attrs["image_ref"], name.Insecure)
	if err != nil {
		return err
	}
	img, err := ggcr.Image(ref, b.auth())
	if err != nil {
		return fmt.Errorf("the image is not in the registry: %w", err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		return fmt.Errorf("layers: %d, %v", len(layers), err)
	}
	binary, err := layerFile(layers[0], "ko-app/backend")
	if err != nil {
		return err
	}
	sum := sha256.Sum256(binary)
	if got := hex.EncodeToString(sum[:]); got != attrs["binary_sha256"] {
		return fmt.Errorf("the layer's binary has sha256 %s, the build reported %s", got, attrs["binary_sha256"])
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
	src := gitsource.Repository{URL: b.repo.URL, Credentials: gitsource.Credentials{Username: b.git.Username, Password: b.git.Password}}
	return src.Archive(context.Background(), hash, io.Discard)
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	l.Close()
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
// another user, another workspace path and cold caches — with Kiln's build
// script and the same verified toolchain, assembles the image the same way,
// and expects the guest's digest.
func (b buildFarmBed) checkElsewhere(t *testing.T, attrs map[string]string, commit string) error {
	ctx := context.Background()
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	script, err := os.ReadFile(filepath.Join(root, "internal", "buildfarm", "scripts", "build.sh"))
	if err != nil {
		return err
	}
	fetcher := &gotoolchain.Fetcher{Cache: &gotoolchain.Cache{Dir: filepath.Join(testenv.CacheDir(), "toolchains")}}
	archive, err := fetcher.FromModuleProxy(ctx, gotoolchain.ModuleProxy{}, buildGoVersion, "linux", "amd64")
	if err != nil {
		return err
	}
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-xzf", archive.Path, "-C", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("unpack go%s: %v: %s", buildGoVersion, err, out)
	}
	ws := filepath.Join(dir, "workspace")
	for _, d := range []string{"slots", "builds"} {
		if err := os.MkdirAll(filepath.Join(ws, d), 0o755); err != nil {
			return err
		}
	}
	var src bytes.Buffer
	src2 := gitsource.Repository{URL: b.repo.URL, Credentials: gitsource.Credentials{Username: b.git.Username, Password: b.git.Password}}
	c, err := src2.Archive(ctx, commit, &src)
	if err != nil {
		return err
	}
	cmd := exec.Command("bash", "-c", string(script), "kiln", ws, "1", "0", filepath.Join(dir, "go"),
		strconv.FormatInt(c.Time.Unix(), 10), "go", ".", "backend", "-X main.buildStamp="+c.Time.UTC().Format(time.RFC3339), "", "0")
	cmd.Env = append(os.Environ(), "HOME="+filepath.Join(dir, "home"), "GOFLAGS=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	fmt.Fprintf(stdin, "0\n%d\n", src.Len())
	_, _ = stdin.Write(src.Bytes())
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("build here: %v\n%s", err, stderr.String())
	}
	tr := tar.NewReader(&stdout)
	if _, err := tr.Next(); err != nil {
		return err
	}
	binary := filepath.Join(dir, "backend")
	data, err := io.ReadAll(tr)
	if err != nil {
		return err
	}
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

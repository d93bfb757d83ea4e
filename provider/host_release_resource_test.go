package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kilnhq/terraform-provider-kiln/internal/buildfarm"
	"github.com/kilnhq/terraform-provider-kiln/internal/delivery/label"
	"github.com/kilnhq/terraform-provider-kiln/internal/oci"
	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
	"github.com/kilnhq/terraform-provider-kiln/internal/signature/signaturetest"
	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

// sampleService is the service the host release tests release: it answers
// /health and /api/buildstamp on $PORT, and a build whose crash stamp is set
// exits at start, as a broken release does.
const sampleService = `package main

import (
	"fmt"
	"net/http"
	"os"
)

var buildstamp, crash string

func main() {
	if crash != "" {
		fmt.Fprintln(os.Stderr, "sample: refusing to start:", crash)
		os.Exit(3)
	}
	http.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	http.HandleFunc("/api/buildstamp", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, buildstamp) })
	if err := http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
`

// sampleBuild is one build of the sample service, served to the provider:
// by url, or by ociRef from the test registry; signatureURL serves its
// detached signature.
type sampleBuild struct {
	url, ociRef, sha256, signatureURL string
	data                              []byte
}

// buildSamples compiles the sample service once per ldflags (linux/amd64, the
// guests' platform) and serves the binaries on 127.0.0.1, each with its
// signature by signer at <url>.asc: the provider downloads them there and
// sends them to the hosts over SSH.
func buildSamples(t *testing.T, signer signaturetest.Signer, ldflags map[string]string) map[string]sampleBuild {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{"main.go": sampleService, "go.mod": "module sample\n\ngo 1.22\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string][]byte{}
	out := map[string]sampleBuild{}
	for name, flags := range ldflags {
		bin := filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w "+flags, "-o", bin, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build the sample service: %v\n%s", err, b)
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		files["/"+name] = data
		files["/"+name+".asc"] = signer.Sign(t, data, time.Now())
		out[name] = sampleBuild{sha256: hex.EncodeToString(sum[:]), data: data}
	}
	url := testenv.ServeFiles(t, files)
	for name, b := range out {
		b.url = url + "/" + name
		b.signatureURL = b.url + ".asc"
		out[name] = b
	}
	return out
}

// secondGuest starts booting a second guest beside the shared one, for the
// tests that need two machines, and removes it when the test ends; the
// function it returns waits for the boot.
func secondGuest(t *testing.T) func() sharedHost {
	t.Helper()
	var (
		h    sharedHost
		err  error
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		var bed testenv.LibvirtBed
		if bed, err = testenv.LibvirtEnv(); err == nil {
			h, err = bootSharedHost(bed)
		}
	}()
	t.Cleanup(func() {
		<-done
		if err == nil {
			h.remove()
		}
	})
	return func() sharedHost {
		<-done
		if err != nil {
			t.Fatalf("second guest: %v", err)
		}
		return h
	}
}

// pushSample pushes b to the test registry as a build's artifact file, and
// returns it with the artifact's ref: its manifest, whose one file is b.
func pushSample(t *testing.T, bed testenv.RegistryBed, b sampleBuild) sampleBuild {
	t.Helper()
	src := filepath.Join(t.TempDir(), "kiln-web")
	if err := os.WriteFile(src, b.data, 0o755); err != nil {
		t.Fatal(err)
	}
	reg := oci.Registry{Host: bed.Host, Username: bed.Username, Password: bed.Password, Insecure: true}
	pushed, err := reg.PushArtifact(context.Background(), "kiln-test/host-release", "", []oci.File{{Path: "dist/kiln-web", Source: src}})
	if err != nil {
		t.Fatal(err)
	}
	b.ociRef = pushed.Ref
	return b
}

// forgePoolRecord creates the control namespace and, in it, a pool record
// with the test pool's labels that Kiln did not write (it lacks Kiln's
// managed-by label), naming a host nobody can reach.
func forgePoolRecord(t *testing.T, cs kubernetes.Interface, control string) {
	t.Helper()
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: control}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), control, metav1.DeleteOptions{}) })
	record := `{"name":"forged","labels":{"serves":"kiln-web"},"build_user":"x","hosts":[{"addr":"192.0.2.1:22",` +
		`"host_key":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIALbXhFFK3BYogfCbNwNqyGTceW+JRwTdU6LLpjl34SX"}]}`
	forged := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "kiln-pool-forged", Namespace: control,
			Labels: map[string]string{label.Kind: "build-pool", "kiln.dev/pool": "forged"}},
		Type: buildfarm.SecretType, Data: map[string][]byte{"record": []byte(record)},
	}
	if _, err := cs.CoreV1().Secrets(control).Create(ctx, forged, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// spaced is a regular expression for text the CLI may wrap across lines.
func spaced(text string) string { return strings.ReplaceAll(text, " ", `\s+`) }

// releaseBed is where the test releases to: the guests, how to log in to
// them, the registry builds may come from and the key builds are signed by.
type releaseBed struct {
	keyFile, knownHosts string
	hosts               []sharedHost
	registry            testenv.RegistryBed
	publicKey           string
	// With a kubeconfig, the hosts are a kiln_build_pool's in the control
	// namespace, chosen by pool_labels.
	kubeconfig, control string
}

// keptDataDir is a data directory of the test's service that exists before
// the first release: Kiln uses it and never removes it.
const keptDataDir = "/srv/kiln-web-kept"

// hostReleaseConfig is the test's kiln_host_release: the service "kiln-web"
// on both guests, one at a time, its artifact b (signed when the bed has a
// key).
func hostReleaseConfig(bed releaseBed, version string, b sampleBuild) string {
	var blocks strings.Builder
	for _, h := range bed.hosts {
		fmt.Fprintf(&blocks, `
  host {
    ssh {
      host = %q
      port = %d
    }
  }
`, h.vm.SSHHost, h.vm.SSHPort)
	}
	hosts, kube, pool := blocks.String(), "", ""
	if bed.kubeconfig != "" {
		kube = fmt.Sprintf("kubernetes {\n    config_path = %q\n  }", bed.kubeconfig)
		pool = fmt.Sprintf(`
resource "kiln_build_pool" "web" {
  name              = "hostrel"
  labels            = { serves = "kiln-web" }
  control_namespace = %q
%s}
`, bed.control, blocks.String())
		hosts = "\n  pool_labels       = kiln_build_pool.web.labels\n  control_namespace = kiln_build_pool.web.control_namespace\n"
	}
	source := fmt.Sprintf("url     = %q", b.url)
	if b.ociRef != "" {
		source = fmt.Sprintf("oci_ref = %q", b.ociRef)
	}
	var signature, registry string
	if bed.publicKey != "" {
		signature = fmt.Sprintf("signature_url = %q\n    public_key    = %q", b.signatureURL, bed.publicKey)
	}
	if bed.registry.Host != "" {
		registry = fmt.Sprintf("registry {\n    url      = %q\n    username = %q\n    password = %q\n    insecure = true\n  }",
			bed.registry.Host, bed.registry.Username, bed.registry.Password)
	}
	return fmt.Sprintf(`
provider "kiln" {
  ssh {
    user             = "debian"
    private_key      = file(%[1]q)
    known_hosts_file = %[2]q
  }
  %[7]s
  %[10]s
}
%[11]s
resource "kiln_host_release" "web" {
  name          = "kiln-web"
  keep_releases = 2

  data_dirs              = ["/var/lib/kiln-web", %[9]q]
  remove_data_on_destroy = true

  artifact {
    version = %[3]q
    %[4]s
    sha256  = %[5]q
    %[8]s
  }

  systemd {
    user        = "kilnweb"
    environment = { PORT = "18080" }

    environment_sensitive         = { API_TOKEN = "release-test-secret" }
    environment_sensitive_version = 1

    limits {
      nofile     = 4096
      memory_max = "256M"
      cpu_quota  = "50%%"
    }
  }

  config_files = {
    "/etc/kiln-web/web.conf" = "greeting = \"hello\"\n"
  }

  health_check {
    http {
      port        = 18080
      path        = "/health"
      expect_body = "ok"
    }
    interval            = "1s"
    timeout             = "3s"
    start_period        = "1s"
    healthy_threshold   = 1
    unhealthy_threshold = 3
  }

  rollout {
    batch_size = 1
  }
%[6]s}
`, bed.keyFile, bed.knownHosts, version, source, b.sha256, hosts, registry, signature, keptDataDir, kube, pool)
}

// askService asks the service on the guest for path, through SSH, with bash
// alone (the guest has no curl), and returns the answer's body.
const askService = `bash -c 'exec 3<>/dev/tcp/127.0.0.1/18080 && printf "GET %s HTTP/1.0\r\n\r\n" >&3 && tail -n1 <&3'`

// TestAccHostRelease_lifecycle releases the sample service, every build
// signed by a key the test makes, to two guests in batches of one: healthy,
// answering, its data directories made, a plan with nothing to do; a new
// build, fetched from the registry through its artifact's manifest, keeps the
// previous release; a build that exits at start rolls the first host back and
// leaves the second untouched, with the journal in the error; a binary
// replaced, a service frozen, a unit stopped and a data directory removed by
// hand show in the plan and are repaired; a digest that does not match and a
// signature that does not verify are refused before any host changes; destroy
// leaves no unit, no install dir and no data directory Kiln made, and keeps
// the one that was there before. It boots a second guest, since
// two releases on one machine would share its systemd.
func TestAccHostRelease_lifecycle(t *testing.T) {
	testAccPreCheck(t)
	second := secondGuest(t)
	signer := signaturetest.New(t, time.Now().Add(-time.Minute), 0)
	builds := buildSamples(t, signer, map[string]string{
		"web-1": "-X main.buildstamp=stamp-1", "web-2": "-X main.buildstamp=stamp-2",
		"web-broken": "-X main.buildstamp=stamp-3 -X main.crash=broken-build",
	})
	h1, h2 := goHostGuest(t), second()
	hosts := []sharedHost{h1, h2}
	// One login key and one known_hosts file for both guests: what an import
	// (which names hosts only) logs in with.
	pub, err := os.ReadFile(h1.keyFile + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	runOnHost(t, h2, "printf '%s' "+remote.ShellQuote(string(pub))+" >>/home/debian/.ssh/authorized_keys")
	knownHosts := filepath.Join(t.TempDir(), "known_hosts")
	var lines string
	for _, h := range hosts {
		lines += fmt.Sprintf("[%s]:%d %s\n", h.vm.SSHHost, h.vm.SSHPort, h.vm.SSHHostKey)
	}
	if err := os.WriteFile(knownHosts, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		runOnHost(t, h, "mkdir -p "+keptDataDir+" && touch "+keptDataDir+"/theirs")
		t.Cleanup(func() { runOnHost(t, h, "rm -rf "+keptDataDir) })
	}
	// The second build comes from the registry, as a kiln_build's artifact
	// file does.
	bed := releaseBed{keyFile: h1.keyFile, knownHosts: knownHosts, hosts: hosts, registry: testenv.Registry(t), publicKey: signaturetest.PublicKeys(t, signer)}
	builds["web-2"] = pushSample(t, bed.registry, builds["web-2"])
	config := func(version, build string) string { return hostReleaseConfig(bed, version, builds[build]) }
	pooled := bed
	pooled.kubeconfig, pooled.control = testenv.Kube(t).Kubeconfig, "kiln-hostrel-"+strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	cs := kubeClient(t, testenv.Kube(t))
	var started string
	mainPIDs := func() string {
		return runOnHost(t, h1, "systemctl show -p MainPID --value kiln-web.service") + "," +
			runOnHost(t, h2, "systemctl show -p MainPID --value kiln-web.service")
	}
	poolHost := func(h sharedHost, release string) knownvalue.Check {
		return knownvalue.ObjectPartial(map[string]knownvalue.Check{
			"address": knownvalue.StringExact(fmt.Sprintf("%s:%d", h.vm.SSHHost, h.vm.SSHPort)),
			"release": knownvalue.StringExact(release), "health": knownvalue.StringExact("healthy"),
			"drift": knownvalue.ListSizeExact(0),
		})
	}
	release := func(version, build string) string { return version + "-" + builds[build].sha256[:12] }
	const addr = "kiln_host_release.web"
	hostAttr := func(i int, name string) tfjsonpath.Path { return tfjsonpath.New("host").AtSliceIndex(i).AtMapKey(name) }
	// onBoth checks cmd's output on both guests.
	onBoth := func(cmd, want string) resource.TestCheckFunc {
		return resource.ComposeTestCheckFunc(h1.check(cmd, want), h2.check(cmd, want))
	}
	answers := func(stamp string) resource.TestCheckFunc {
		return onBoth(fmt.Sprintf(askService, "/api/buildstamp"), stamp)
	}
	releases := func(h sharedHost, want ...string) resource.TestCheckFunc {
		return h.check("ls /opt/kiln/kiln-web/releases | tr '\\n' ' '", strings.Join(want, " "))
	}
	v1, v2, v3 := release("1.0.0", "web-1"), release("2.0.0", "web-2"), release("3.0.0", "web-broken")
	movedPort := strings.Replace(config("2.0.0", "web-2"), `PORT = "18080"`, `PORT = "18081"`, 1)

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		// environment_sensitive is write-only.
		TerraformVersionChecks: []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)},
		CheckDestroy: resource.ComposeTestCheckFunc(
			onBoth("systemctl cat kiln-web.service >/dev/null 2>&1 && echo unit || echo none", "none"),
			onBoth("ls -d /opt/kiln/kiln-web /etc/kiln-web/web.conf /var/lib/kiln-web 2>/dev/null | wc -l", "0"),
			onBoth("ls "+keptDataDir, "theirs"),
		),
		Steps: []resource.TestStep{
			{
				Config: config("1.0.0", "web-1"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, hostAttr(0, "release"), knownvalue.StringExact(v1)),
					statecheck.ExpectKnownValue(addr, hostAttr(1, "release"), knownvalue.StringExact(v1)),
					statecheck.ExpectKnownValue(addr, hostAttr(1, "digest"), knownvalue.StringExact(builds["web-1"].sha256)),
					statecheck.ExpectKnownValue(addr, hostAttr(1, "active_state"), knownvalue.StringExact("active")),
					statecheck.ExpectKnownValue(addr, hostAttr(0, "drift"), knownvalue.ListSizeExact(0)),
					statecheck.ExpectKnownValue(addr, hostAttr(0, "health"), knownvalue.StringExact("healthy")),
					statecheck.ExpectKnownValue(addr, hostAttr(1, "health"), knownvalue.StringExact("healthy")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("systemd").AtMapKey("environment_sensitive"), knownvalue.Null()),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("artifact").AtMapKey("signer_fingerprint"), knownvalue.StringExact(signer.Fingerprint())),
				},
				Check: resource.ComposeTestCheckFunc(
					answers("stamp-1"),
					onBoth(fmt.Sprintf(askService, "/health"), "ok"),
					onBoth("systemctl show -p User -p LimitNOFILE -p MemoryMax -p CPUQuotaPerSecUSec kiln-web.service | sort | tr '\\n' ' '",
						"CPUQuotaPerSecUSec=500ms LimitNOFILE=4096 MemoryMax=268435456 User=kilnweb"),
					onBoth("readlink /opt/kiln/kiln-web/current", "releases/"+v1),
					onBoth("stat -c '%a %U' /opt/kiln/kiln-web/kiln-web.env; stat -c '%a %G' /etc/kiln-web/web.conf | tr '\\n' ' '",
						"600 root\n640 kilnweb"),
					onBoth("stat -c '%U %a' /var/lib/kiln-web "+keptDataDir+" | tr '\\n' ' '", "kilnweb 750 root 755"),
				),
			},
			{
				// A new build, from the registry: the plan names each host's
				// move, and the previous release stays.
				Config: config("2.0.0", "web-2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(addr, hostAttr(0, "release"), knownvalue.StringExact(v2)),
					plancheck.ExpectKnownValue(addr, hostAttr(1, "release"), knownvalue.StringExact(v2)),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, hostAttr(0, "previous_release"), knownvalue.StringExact(v1)),
					statecheck.ExpectKnownValue(addr, hostAttr(1, "release"), knownvalue.StringExact(v2)),
				},
				Check: resource.ComposeTestCheckFunc(answers("stamp-2"), releases(h1, v1, v2), releases(h2, v1, v2)),
			},
			{
				// A build that exits at start: the first host rolls back and
				// is healthy again; the second is never touched.
				Config: config("3.0.0", "web-broken"),
				ExpectError: regexp.MustCompile(`(?s)` + spaced(`release 3\.0\.0-[0-9a-f]{12} failed its health check: http GET /health`) +
					`.*` + spaced(`Rolled back to `+regexp.QuoteMeta(v2)+`, which is healthy again.`) +
					`.*journal.*` + spaced(`refusing to start: broken-build`)),
			},
			{
				RefreshState: true, ExpectNonEmptyPlan: true,
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttr(addr, "host.0.release", v2),
					resource.TestCheckResourceAttr(addr, "host.0.active_state", "active"),
					resource.TestCheckResourceAttr(addr, "host.0.health", "healthy"),
					resource.TestCheckResourceAttr(addr, "host.1.release", v2),
					answers("stamp-2"),
					h1.check("readlink /opt/kiln/kiln-web/current", "releases/"+v2),
					releases(h1, v1, v2, v3),
					releases(h2, v1, v2),
				),
			},
			{
				// Back to the good build: nothing to restart on either host.
				Config: config("2.0.0", "web-2"),
				Check:  answers("stamp-2"),
			},
			{
				// The same build with its environment changed so that the
				// health check gets no answer: the first host goes back to
				// the unit and files it ran with, and the second is never
				// touched.
				Config: movedPort,
				ExpectError: regexp.MustCompile(`(?s)` + spaced(`release `+regexp.QuoteMeta(v2)+` failed its health check`) +
					`.*` + spaced(`Rolled back to the unit and files it ran with before, and healthy again.`)),
			},
			{
				// The host matches Kiln's records but not the configuration:
				// the plan says so and would release again.
				Config: movedPort, PlanOnly: true, ExpectNonEmptyPlan: true,
			},
			{
				RefreshState: true, ExpectNonEmptyPlan: true,
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttr(addr, "host.0.drift.0", "rolled back: the last release's unit and files failed their health check"),
					resource.TestCheckResourceAttr(addr, "host.1.drift.#", "0"),
					answers("stamp-2"),
				),
			},
			{
				// Back to the configuration the host runs: the next plan is empty.
				Config: config("2.0.0", "web-2"),
				Check:  answers("stamp-2"),
			},
			{Config: config("2.0.0", "web-2"), PlanOnly: true},
			{
				// Out of band: the first host's binary replaced and its
				// service frozen (the unit stays active, the health check
				// gets no answer), the second's unit stopped and a data
				// directory removed. The refresh shows all, and plans a repair.
				PreConfig: func() {
					runOnHost(t, h1, "cp /bin/true /opt/kiln/kiln-web/current/.x && mv /opt/kiln/kiln-web/current/.x /opt/kiln/kiln-web/current/kiln-web"+
						" && systemctl kill --signal=SIGSTOP kiln-web.service")
					runOnHost(t, h2, "systemctl stop kiln-web.service && rm -rf /var/lib/kiln-web")
				},
				RefreshState: true, ExpectNonEmptyPlan: true,
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttr(addr, "host.0.active_state", "active"),
					resource.TestCheckResourceAttr(addr, "host.0.drift.#", "2"),
					resource.TestMatchResourceAttr(addr, "host.0.drift.0",
						regexp.MustCompile(`^the current binary has sha256 [0-9a-f]{64}, want `+builds["web-2"].sha256+`$`)),
					resource.TestCheckResourceAttr(addr, "host.0.drift.1",
						"the health check fails: http GET /health on port 18080: no answer within 3s"),
					resource.TestCheckResourceAttr(addr, "host.0.health", "unhealthy: http GET /health on port 18080: no answer within 3s"),
					resource.TestCheckResourceAttr(addr, "host.1.active_state", "inactive"),
					resource.TestCheckResourceAttr(addr, "host.1.drift.#", "2"),
					resource.TestCheckResourceAttr(addr, "host.1.drift.0", "the unit is inactive, not active"),
					resource.TestCheckResourceAttr(addr, "host.1.drift.1", "data directory /var/lib/kiln-web is missing"),
				),
				RefreshPlanChecks: resource.RefreshPlanChecks{PostRefresh: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(addr, hostAttr(0, "digest"), knownvalue.StringExact(builds["web-2"].sha256)),
					plancheck.ExpectKnownValue(addr, hostAttr(0, "health"), knownvalue.StringExact("healthy")),
					plancheck.ExpectKnownValue(addr, hostAttr(1, "active_state"), knownvalue.StringExact("active")),
				}},
			},
			{
				// The repair; the first host prunes 1.0.0 (keep_releases = 2,
				// and since its rollback it has no previous release).
				Config: config("2.0.0", "web-2"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, hostAttr(0, "health"), knownvalue.StringExact("healthy")),
					statecheck.ExpectKnownValue(addr, hostAttr(1, "drift"), knownvalue.ListSizeExact(0)),
				},
				Check: resource.ComposeTestCheckFunc(answers("stamp-2"),
					onBoth("sha256sum </opt/kiln/kiln-web/current/kiln-web | cut -d' ' -f1", builds["web-2"].sha256),
					h2.check("stat -c '%U %a' /var/lib/kiln-web", "kilnweb 750"),
					releases(h1, v2, v3), releases(h2, v1, v2)),
			},
			{
				ResourceName:      addr,
				ImportState:       true,
				ImportStateVerify: true,
				ImportStateIdFunc: func(*terraform.State) (string, error) {
					return fmt.Sprintf("kiln-web,debian@%s:%d,debian@%s:%d", h1.vm.SSHHost, h1.vm.SSHPort, h2.vm.SSHHost, h2.vm.SSHPort), nil
				},
				ImportStateVerifyIgnore: []string{"artifact", "systemd", "health_check", "rollout", "config_files",
					"keep_releases", "data_dirs", "remove_data_on_destroy", "host.0.ssh.user", "host.1.ssh.user",
					"host.0.health", "host.1.health"},
			},
			{
				// A download whose digest differs: refused before any host
				// changes.
				Config: hostReleaseConfig(bed, "4.0.0",
					sampleBuild{url: builds["web-1"].url, sha256: builds["web-2"].sha256, signatureURL: builds["web-1"].signatureURL}),
				ExpectError: regexp.MustCompile(`(?s)` + spaced(`has sha256 `+builds["web-1"].sha256+`, want `+
					builds["web-2"].sha256+`: refused, no host was changed`)),
			},
			{
				// A build whose signature is another build's: refused before
				// any host changes.
				Config: hostReleaseConfig(bed, "4.0.0",
					sampleBuild{url: builds["web-1"].url, sha256: builds["web-1"].sha256, signatureURL: builds["web-2"].signatureURL}),
				ExpectError: regexp.MustCompile(`(?s)` + spaced(`artifact `+regexp.QuoteMeta(builds["web-1"].url)+
					`: the signature does not verify with key `+signer.Fingerprint()) + `.*` + spaced(`refused, no host was changed`)),
			},
			{
				RefreshState: true, ExpectNonEmptyPlan: true,
				Check: resource.ComposeTestCheckFunc(answers("stamp-2"), onBoth("readlink /opt/kiln/kiln-web/current", "releases/"+v2),
					releases(h1, v2, v3), releases(h2, v1, v2)),
			},
			{
				// The same hosts registered as a build pool, chosen by its
				// labels: the plan comes before the pool exists, the hosts
				// run the release already and are not restarted, and a pool
				// record Kiln did not write (naming an unreachable host) does
				// not count. Destroy then goes through the pool.
				PreConfig: func() {
					forgePoolRecord(t, cs, pooled.control)
					started = mainPIDs()
				},
				Config: hostReleaseConfig(pooled, "2.0.0", builds["web-2"]),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("host"), knownvalue.ListSizeExact(0)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("pool_hosts"), knownvalue.ListExact([]knownvalue.Check{
						poolHost(h1, v2), poolHost(h2, v2),
					})),
				},
				Check: resource.ComposeTestCheckFunc(answers("stamp-2"), func(*terraform.State) error {
					if now := mainPIDs(); now != started {
						return fmt.Errorf("the service restarted: main PIDs %s, were %s", now, started)
					}
					return nil
				}),
			},
		},
	})
}

// TestAccHostRelease_badInput: what the engine would refuse is refused at
// plan time, naming the field; no host is contacted.
func TestAccHostRelease_badInput(t *testing.T) {
	testAccPreCheck(t)
	const sha = "0000000000000000000000000000000000000000000000000000000000000000"
	signer := signaturetest.New(t, time.Now().Add(-time.Minute), 0)
	key, signature := signaturetest.PublicKeys(t, signer), string(signer.Sign(t, []byte("x"), time.Now()))
	artifact := func(sha256, extra string) string {
		return fmt.Sprintf("url = \"http://127.0.0.1:1/web\"\n    sha256 = %q\n    %s", sha256, extra)
	}
	config := func(name, artifact, check, extra string) string {
		return fmt.Sprintf(`
resource "kiln_host_release" "bad" {
  name = %q
  %s
  artifact {
    version = "1.0.0"
    %s
  }
  health_check {
    %s
  }
  host {
    ssh {
      host     = "192.0.2.1"
      host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIALbXhFFK3BYogfCbNwNqyGTceW+JRwTdU6LLpjl34SX"
    }
  }
}
`, name, extra, artifact, check)
	}
	const http = `http { port = 8080 }`
	good := artifact(sha, "")
	// The host block comes last in the resource.
	withoutHosts := func(c string) string { return c[:strings.Index(c, "  host {")] + "}\n" }
	blob := "127.0.0.1:5000/kiln-test/web@sha256:" + strings.Repeat("ab", 32)
	var steps []resource.TestStep
	for _, c := range []struct{ config, want string }{
		{config("Web", good, http, ""), `name must be a service name`},
		{config("web", artifact("abc", ""), http, ""), `artifact.sha256 must be a SHA-256 digest`},
		{config("web", fmt.Sprintf("sha256 = %q", sha), http, ""), `artifact needs exactly one source: artifact.url or artifact.oci_ref`},
		{config("web", artifact(sha, fmt.Sprintf("oci_ref = %q", blob)), http, ""), `artifact needs exactly one source: artifact.url or artifact.oci_ref`},
		{config("web", fmt.Sprintf("oci_ref = \"127.0.0.1:5000/kiln-test/web:latest\"\n sha256 = %q", sha), http, ""),
			`artifact.oci_ref must be a reference pinned by digest`},
		{config("web", artifact(sha, fmt.Sprintf("signature = %q", signature)), http, ""), `artifact.signature and artifact.signature_url need artifact.public_key`},
		{config("web", artifact(sha, fmt.Sprintf("public_key = %q", key)), http, ""), `artifact.public_key needs artifact.signature or artifact.signature_url`},
		{config("web", artifact(sha, "signature_url = \"http://127.0.0.1:1/web.asc\"\n public_key = \"not a key\""), http, ""),
			`artifact.public_key must be one armored OpenPGP public key`},
		{config("web", artifact(sha, fmt.Sprintf("signature = \"garbage\"\n public_key = %q", key)), http, ""),
			`artifact.signature must be an armored OpenPGP signature`},
		{config("web", artifact(sha, fmt.Sprintf("signature = %q\n signature_url = \"http://127.0.0.1:1/web.asc\"\n public_key = %q", signature, key)), http, ""),
			`artifact.signature and artifact.signature_url conflict`},
		{config("web", good, "", ""), `health_check needs exactly one of an http and a tcp block`},
		{config("web", good, http+"\ntcp { port = 1 }", ""), `health_check needs exactly one of an http and a tcp block`},
		{config("web", good, `tcp {}`, ""), `health_check.tcp needs a port`},
		{config("web", good, http, `config_files = { "etc/x.conf" = "" }`), `config_files.*must be a clean absolute path`},
		{config("web", good, http, "systemd {\n environment = { \"A-B\" = \"1\" }\n}"), `systemd.environment.*must be an environment variable name`},
		{config("web", good, http, "systemd {\n limits {\n cpu_quota = \"1.5\"\n }\n}"), `cpu_quota.*must be a percentage`},
		{config("web", good, http, `data_dirs = ["/opt/kiln/web/data"]`),
			`data_dirs: "/opt/kiln/web/data" overlaps the install dir /opt/kiln/web`},
		{config("web", good, http, "install_dir = \"/srv/web\"\n data_dirs = [\"/var/lib/web\", \"/srv\"]"),
			`data_dirs: "/srv" overlaps the install dir /srv/web`},
		{config("web", good, http, `data_dirs = ["var/lib/web"]`), `data_dirs: "var/lib/web" is not a clean absolute path`},
		{config("web", good, http, `pool_labels = { team = "web" }`), `pool_labels and host blocks conflict`},
		{withoutHosts(config("web", good, http, "")), `At least one host block, or pool_labels, is required`},
		{withoutHosts(config("web", good, http, `pool_labels = { team = "web" }`)), `Missing kubernetes configuration`},
	} {
		steps = append(steps, resource.TestStep{Config: c.config, PlanOnly: true, ExpectError: regexp.MustCompile(`(?s)` + spaced(c.want))})
	}
	resource.UnitTest(t, resource.TestCase{ProtoV6ProviderFactories: testAccProviders, Steps: steps})
}

// TestAccHostRelease_plan: a full configuration plans, before any host is
// contacted, the release each host will run and the signer its artifact is
// verified against.
func TestAccHostRelease_plan(t *testing.T) {
	testAccPreCheck(t)
	build := sampleBuild{url: "http://127.0.0.1:1/web", sha256: strings.Repeat("ab", 32), signatureURL: "http://127.0.0.1:1/web.asc"}
	signer := signaturetest.New(t, time.Now().Add(-time.Minute), 0)
	hosts := []sharedHost{{}, {}}
	hosts[0].vm.SSHHost, hosts[0].vm.SSHPort = "192.0.2.1", 22
	hosts[1].vm.SSHHost, hosts[1].vm.SSHPort = "192.0.2.2", 22
	keyFile, _, err := newLoginKeyFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bed := releaseBed{keyFile: keyFile, knownHosts: "/dev/null", hosts: hosts, publicKey: signaturetest.PublicKeys(t, signer)}
	const addr = "kiln_host_release.web"
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)},
		Steps: []resource.TestStep{{
			Config:   hostReleaseConfig(bed, "1.0.0", build),
			PlanOnly: true, ExpectNonEmptyPlan: true,
			ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate),
				plancheck.ExpectKnownValue(addr, tfjsonpath.New("install_dir"), knownvalue.StringExact("/opt/kiln/kiln-web")),
				plancheck.ExpectKnownValue(addr, tfjsonpath.New("host").AtSliceIndex(1).AtMapKey("release"), knownvalue.StringExact("1.0.0-abababababab")),
				plancheck.ExpectKnownValue(addr, tfjsonpath.New("host").AtSliceIndex(1).AtMapKey("drift"), knownvalue.ListSizeExact(0)),
				plancheck.ExpectKnownValue(addr, tfjsonpath.New("host").AtSliceIndex(1).AtMapKey("health"), knownvalue.StringExact("healthy")),
				plancheck.ExpectKnownValue(addr, tfjsonpath.New("artifact").AtMapKey("signer_fingerprint"), knownvalue.StringExact(signer.Fingerprint())),
			}},
		}},
	})
}

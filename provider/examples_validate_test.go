package provider

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

// mirrorVersion is the version the provider built here has in the test's
// provider mirror: the examples do not constrain the provider's version.
const mirrorVersion = "0.0.1"

// TestExamplesValidate runs the CLI's init (without a backend) and validate on
// every configuration under examples/ that stands alone: the modules, their
// examples and the quickstart, with the provider built from this checkout.
// The documentation examples (examples/provider, resources and data-sources)
// are fragments that use one another's resources and variables:
// TestExamplesMatchSchemas checks them against the schemas, and the example
// apply tests apply those that need no guest.
//
// The CLI is TF_ACC_TERRAFORM_PATH's, else the one make tools pinned in
// .tools/bin (OpenTofu first), else tofu or terraform on PATH; the test is
// skipped without one. The provider is installed from a local mirror
// (init -plugin-dir), so nothing is fetched and no CLI configuration applies.
func TestExamplesValidate(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cli := exampleCLI(root)
	if cli == "" {
		t.Skip("no Terraform or OpenTofu CLI: make tools builds them into .tools/bin, or set TF_ACC_TERRAFORM_PATH")
	}
	examples := filepath.Join(root, "examples")
	dirs := standaloneConfigs(t, examples)
	for _, module := range []string{"delivery-project", "go-build-farm"} {
		if !slices.Contains(dirs, "modules/"+module) || !slices.Contains(dirs, "modules/"+module+"/example") {
			t.Fatalf("the %s module or its example was not found among %v", module, dirs)
		}
	}
	// init writes .terraform into the directory it runs in: run in a copy.
	work := filepath.Join(t.TempDir(), "examples")
	if err := os.CopyFS(work, os.DirFS(examples)); err != nil {
		t.Fatal(err)
	}
	mirror := providerMirror(t, root)
	cliConfig := filepath.Join(t.TempDir(), "empty.tfrc")
	if err := os.WriteFile(cliConfig, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			run := func(args ...string) {
				cmd := exec.Command(cli, args...)
				cmd.Dir = filepath.Join(work, dir)
				// No TF_ settings of this process (TF_CLI_ARGS, TF_DATA_DIR and
				// the like) reach the CLI.
				cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "TF_") })
				cmd.Env = append(cmd.Env, "TF_CLI_CONFIG_FILE="+cliConfig, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1")
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("%s %s in examples/%s: %v\n%s", filepath.Base(cli), strings.Join(args, " "), dir, err, out)
				}
			}
			run("init", "-backend=false", "-input=false", "-no-color", "-plugin-dir="+mirror)
			run("validate", "-no-color")
		})
	}
}

// exampleCLI is the Terraform or OpenTofu CLI to validate with, or "".
func exampleCLI(root string) string {
	if cli := os.Getenv("TF_ACC_TERRAFORM_PATH"); cli != "" {
		return cli
	}
	for _, name := range []string{"tofu", "terraform"} {
		if p := filepath.Join(root, ".tools", "bin", name); isExecutable(p) {
			return p
		}
	}
	for _, name := range []string{"tofu", "terraform"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// standaloneConfigs lists the directories below examples (relative, with
// slashes) holding .tf files, but the documentation examples.
func standaloneConfigs(t *testing.T, examples string) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(examples, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(examples, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			switch {
			case d.Name() == ".terraform", rel == "provider", rel == "resources", rel == "data-sources":
				return filepath.SkipDir
			}
			return nil
		}
		if dir := filepath.ToSlash(filepath.Dir(rel)); strings.HasSuffix(rel, ".tf") && !slices.Contains(dirs, dir) {
			dirs = append(dirs, dir)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(dirs)
	if len(dirs) == 0 {
		t.Fatal("no configurations under examples/")
	}
	return dirs
}

// providerMirror builds the provider from the checkout at root into a
// provider mirror directory (unpacked layout) as kilnhq/kiln mirrorVersion,
// under both CLIs' default registry hosts, and returns the directory.
func providerMirror(t *testing.T, root string) string {
	t.Helper()
	mirror := t.TempDir()
	binary := filepath.Join(t.TempDir(), "terraform-provider-kiln")
	build := exec.Command("go", "build", "-trimpath", "-o", binary, ".")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the provider: %v\n%s", err, out)
	}
	data, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"registry.terraform.io", "registry.opentofu.org"} {
		dir := filepath.Join(mirror, host, "kilnhq", "kiln", mirrorVersion, runtime.GOOS+"_"+runtime.GOARCH)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "terraform-provider-kiln_v"+mirrorVersion), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return mirror
}

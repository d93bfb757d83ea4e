package hostprep

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
)

// Verification is what the default toolchain reported after the run.
type Verification struct {
	GoVersion string // `go version`
	GOROOT    string
	GOPATH    string
	// BuildOutput is what the small program printed (buildOK), with
	// Spec.VerifyBuild.
	BuildOutput string
	TestOutput  string // `go test -short` output, when packages were given
}

// buildOK is what the verification program prints.
const buildOK = "kiln-verify-ok"

// verify checks the default toolchain as the login user, as a build there
// would run it: cheaply by default (scripts/verify-go.sh: the go command and
// its compiler run, its settings read), with a build and run of a small
// program when spec asks for one, and `go test` of spec.TestPackages. facts
// are the host's after the apply.
func (h *Host) verify(ctx context.Context, spec Spec, facts Facts) (Verification, error) {
	if spec.Default == "" {
		return Verification{}, nil
	}
	goBin := spec.Root + "/" + spec.Default + "/bin/go"
	start := time.Now()
	const step = "verify go"
	out, err := h.client.RunAsUser(ctx, step, remote.BashCommand(verifyGoScript, goBin))
	if err != nil {
		return Verification{}, err
	}
	v, err := parseVerification(out)
	if err != nil {
		return Verification{}, fmt.Errorf("%s: step %q: %w", h.client.Host(), step, err)
	}
	h.took(ctx, step, start, "version", spec.Default)
	if spec.VerifyBuild {
		if v.BuildOutput, err = h.verifyBuild(ctx, spec.Root, goBin, facts.Toolchains[spec.Default]); err != nil {
			return v, err
		}
	}
	if len(spec.TestPackages) > 0 {
		start := time.Now()
		h.log(ctx, "testing std packages", "packages", spec.TestPackages)
		out, err := h.client.RunAsUser(ctx, "verify go test", remote.BashCommand(goTestScript, append([]string{goBin}, spec.TestPackages...)...))
		if err != nil {
			return v, err
		}
		v.TestOutput = strings.TrimSpace(out)
		h.took(ctx, "verify go test", start)
	}
	return v, nil
}

// verifyBuild builds and runs the small program with tc's goBin, once per
// toolchain: a stamp beside Kiln's marker records the archive the build
// passed with, and a toolchain installed from that archive and still intact
// is not built again.
func (h *Host) verifyBuild(ctx context.Context, root, goBin string, tc Toolchain) (string, error) {
	if tc.BuildVerified() {
		h.log(ctx, "verification build skipped: this toolchain passed it already",
			"version", tc.Version, "archive_sha256", tc.ArchiveSHA256)
		return buildOK, nil
	}
	const step = "verify build"
	start := time.Now()
	h.log(ctx, "building and running a test program", "version", tc.Version)
	out, err := h.client.RunAsUser(ctx, step, remote.BashCommand(verifyBuildScript, goBin))
	if err != nil {
		return "", err
	}
	out = strings.TrimSpace(out)
	if last := out[strings.LastIndex(out, "\n")+1:]; last != buildOK {
		return out, fmt.Errorf("%s: step %q: the test program printed %q, want %q", h.client.Host(), step, out, buildOK)
	}
	if tc.ArchiveSHA256 != "" {
		stamp := root + "/" + tc.Version + "/" + buildStampName
		if _, err := h.client.Run(ctx, "record the verification build", remote.BashCommand(writeFileScript, stamp, tc.ArchiveSHA256+"\n")); err != nil {
			return out, err
		}
	}
	h.took(ctx, step, start, "version", tc.Version)
	return buildOK, nil
}

// parseVerification reads scripts/verify-go.sh's output: the go command's
// release, host OS and architecture, GOROOT and GOPATH, then the compiler's
// version line, which must name the same release. GoVersion is spelled as
// `go version` prints it.
func parseVerification(out string) (Verification, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 6 {
		return Verification{}, fmt.Errorf("the go command's checks printed %q, want its release, platform, GOROOT, GOPATH and its compiler's version", out)
	}
	release, goos, goarch := lines[0], lines[1], lines[2]
	if !strings.HasPrefix(release, "go") || goos == "" || goarch == "" {
		return Verification{}, fmt.Errorf("go env printed %q", strings.Join(lines[:3], "\n"))
	}
	if line := lines[5]; field(line, 0) != "compile" || field(line, 2) != release {
		return Verification{}, fmt.Errorf("go tool compile -V printed %q, want compile version %s", line, release)
	}
	return Verification{GoVersion: "go version " + release + " " + goos + "/" + goarch, GOROOT: lines[3], GOPATH: lines[4]}, nil
}

// field is the i-th white-space separated field of s, "" when it has fewer.
func field(s string, i int) string {
	if f := strings.Fields(s); i < len(f) {
		return f[i]
	}
	return ""
}

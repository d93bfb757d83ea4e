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
// would run it: cheaply by default (scripts/verify-go.sh: the go command, its
// settings, its compiler and linker run), with a build and run of a small
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

// parseVerification reads scripts/verify-go.sh's output: the version line,
// GOROOT, GOPATH, then the compiler's and the linker's version lines, which
// must name the go command's release.
func parseVerification(out string) (Verification, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 5 {
		return Verification{}, fmt.Errorf("the go command's checks printed %q, want its version, GOROOT, GOPATH and its tools' versions", out)
	}
	release := field(lines[0], 2) // go version go1.24.4 linux/amd64
	if !strings.HasPrefix(release, "go") {
		return Verification{}, fmt.Errorf("go version printed %q", lines[0])
	}
	for i, tool := range []string{"compile", "link"} {
		if line := lines[3+i]; field(line, 0) != tool || field(line, 2) != release {
			return Verification{}, fmt.Errorf("go tool %s -V printed %q, want %s version %s", tool, line, tool, release)
		}
	}
	return Verification{GoVersion: lines[0], GOROOT: lines[1], GOPATH: lines[2]}, nil
}

// field is the i-th white-space separated field of s, "" when it has fewer.
func field(s string, i int) string {
	if f := strings.Fields(s); i < len(f) {
		return f[i]
	}
	return ""
}

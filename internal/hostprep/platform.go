package hostprep

import (
	"fmt"
	"slices"

	"github.com/kilnhq/terraform-provider-kiln/internal/gotoolchain"
)

// hostOS is the one operating system Kiln provisions: its scripts read /proc
// and use GNU tools.
const hostOS = "linux"

// linuxArchitectures are those Go publishes Linux releases for, spelled as
// the release files spell them.
var linuxArchitectures = []string{"386", "amd64", "arm64", "armv6l", "loong64", "mips", "mips64", "mips64le", "mipsle", "ppc64", "ppc64le", "riscv64", "s390x"}

// AnyPlatform is what version requests resolve against before a host's facts
// are known: Linux on any architecture.
var AnyPlatform = gotoolchain.Platform{OS: hostOS}

// LinuxPlatform is the toolchain platform of a Linux host whose facts report
// arch; an error when Go publishes no Linux release for arch.
func LinuxPlatform(arch string) (gotoolchain.Platform, error) {
	if !slices.Contains(linuxArchitectures, arch) {
		return gotoolchain.Platform{}, fmt.Errorf("the host's architecture %q has no Go release: Kiln installs toolchains on linux/%v", arch, linuxArchitectures)
	}
	return gotoolchain.Platform{OS: hostOS, Arch: arch}, nil
}

// Platform is the toolchain platform of the host; an error when Kiln cannot
// install toolchains there.
func (f Facts) Platform() (gotoolchain.Platform, error) {
	if f.GOOS != hostOS {
		return gotoolchain.Platform{}, fmt.Errorf("the host runs %q (%s): Kiln installs toolchains on Linux hosts only", f.GOOS, f.OS)
	}
	return LinuxPlatform(f.Arch)
}

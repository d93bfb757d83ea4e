// Package image bakes golden images from provisioned hosts: the host is
// generalized over SSH, shut down cleanly, and its disk copied into a
// standalone image named by a fingerprint of what went into it.
package image

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strconv"

	"github.com/kilnhq/terraform-provider-kiln/internal/hostprep"
)

// Generalize says what is removed from the host before its disk is copied.
// Users' ~/.ssh directories are never touched.
type Generalize struct {
	// CloudInit runs cloud-init clean (logs, seed, machine-id and the
	// configs it wrote, as far as the host's cloud-init offers them), so
	// clones run their first boot afresh.
	CloudInit bool `json:"cloud_init"`
	// SSHHostKeys removes the host keys; cloud-init writes new ones.
	SSHHostKeys bool `json:"ssh_host_keys"`
	// MachineID empties /etc/machine-id; systemd makes a new one at boot.
	MachineID bool `json:"machine_id"`
	// Logs truncates logs and journals, shell histories and apt caches.
	Logs bool `json:"logs"`
	// Temp removes temporary files.
	Temp bool `json:"temp"`
	// Fstrim trims the file systems, so freed blocks leave the image.
	Fstrim bool `json:"fstrim"`
}

// DefaultGeneralize removes everything Generalize can.
func DefaultGeneralize() Generalize {
	return Generalize{CloudInit: true, SSHHostKeys: true, MachineID: true, Logs: true, Temp: true, Fstrim: true}
}

// scriptArgs are the arguments of scripts/generalize.sh, in its order.
func (g Generalize) scriptArgs() []string {
	args := make([]string, 0, 6)
	for _, on := range []bool{g.CloudInit, g.SSHHostKeys, g.MachineID, g.Logs, g.Temp, g.Fstrim} {
		args = append(args, strconv.FormatBool(on))
	}
	return args
}

// Toolchain is a Go toolchain the source host holds, as its provisioning
// recorded it.
type Toolchain struct {
	Version        string `json:"version"`
	ArchiveSHA256  string `json:"archive_sha256"`
	GoBinarySHA256 string `json:"go_binary_sha256"`
}

// Inputs are what an image is made of; equal inputs make the same image.
type Inputs struct {
	// Base identifies the image the source VM started from.
	Base string
	// Toolchains are the Go toolchains on the source host.
	Toolchains []Toolchain
	// Extra are further inputs the user names the image by, such as the
	// hardening settings of the source host.
	Extra      map[string]string
	Generalize Generalize
	// Compress is CompressZstd for a recompressed image; empty or
	// CompressNone for none.
	Compress string
	// Overlay is an image kept as an overlay on the source's base volume.
	Overlay bool
	// Provision is set for an image baked from a base volume: how the
	// transient VM is provisioned.
	Provision *Provision
}

// Provision is what an image baked from a base volume is provisioned with,
// as far as it makes the image: the Go versions' archives and the host spec.
type Provision struct {
	// Archives name each Go version's archive, by version, as
	// gotoolchain.Source.ArchiveID names them.
	Archives map[string]string
	// Host is the spec the transient VM is provisioned to (versions,
	// default, root and hardening).
	Host hostprep.Spec
}

// Image compression: none, or qcow2 clusters compressed with zstd.
const (
	CompressNone = "none"
	CompressZstd = "zstd"
)

// ScriptVersion identifies the bake script: a changed script makes new images.
func ScriptVersion() string {
	sum := sha256.Sum256([]byte(generalizeScript))
	return hex.EncodeToString(sum[:])
}

// Fingerprint is the SHA-256 of the normalised inputs and the bake scripts'
// versions: the order toolchains are listed in does not matter.
func Fingerprint(in Inputs) string {
	toolchains := slices.Clone(in.Toolchains)
	slices.SortFunc(toolchains, func(a, b Toolchain) int { return cmp.Compare(a.Version, b.Version) })
	type extra struct{ Key, Value string }
	var extras []extra
	for _, k := range slices.Sorted(maps.Keys(in.Extra)) {
		extras = append(extras, extra{k, in.Extra[k]})
	}
	var compress string
	if in.Compress == CompressZstd {
		sum := sha256.Sum256([]byte(compressScript))
		compress = in.Compress + ":" + hex.EncodeToString(sum[:])
	}
	type provision struct {
		Provision
		// Script is the login retirement's version: the generalize script's
		// is Script below.
		Script string
	}
	var prov *provision
	if in.Provision != nil {
		sum := sha256.Sum256([]byte(retireLoginScript))
		prov = &provision{*in.Provision, hex.EncodeToString(sum[:])}
	}
	// The libvirt options and the provisioning are left out when unset:
	// images baked before they existed keep their fingerprints.
	doc, err := json.Marshal(struct {
		Base       string
		Toolchains []Toolchain
		Extra      []extra
		Generalize Generalize
		Script     string
		Compress   string     `json:",omitempty"`
		Overlay    bool       `json:",omitempty"`
		Provision  *provision `json:",omitempty"`
	}{in.Base, toolchains, extras, in.Generalize, ScriptVersion(), compress, in.Overlay, prov})
	if err != nil {
		panic(err) // strings, numbers, bools and maps of strings always encode
	}
	sum := sha256.Sum256(doc)
	return hex.EncodeToString(sum[:])
}

// FullName is the image's name: name and the fingerprint's first 12 digits.
func FullName(name, fingerprint string) string { return name + "-" + fingerprint[:12] }

// VolumeName is the libvirt volume an image is stored in.
func VolumeName(name, fingerprint string) string { return FullName(name, fingerprint) + ".qcow2" }

// volumeName matches VolumeName's names.
var volumeName = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9_.-]*)-[0-9a-f]{12}\.qcow2$`)

// ParseVolumeName is the image name in a volume named as VolumeName names
// them; ok is false for any other name.
func ParseVolumeName(volume string) (name string, ok bool) {
	m := volumeName.FindStringSubmatch(volume)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// ManifestPath is where the manifest is written inside the image.
const ManifestPath = "/etc/kiln/image.json"

// Manifest describes what an image holds; it is written inside the image at
// ManifestPath.
type Manifest struct {
	Name        string              `json:"name"`
	Fingerprint string              `json:"fingerprint"`
	OS          string              `json:"os"`
	Kernel      string              `json:"kernel"`
	Toolchains  []ManifestToolchain `json:"toolchains"`
}

// ManifestToolchain is a toolchain in the image, with bin/go's hash as baked.
type ManifestToolchain struct {
	Version        string `json:"version"`
	ArchiveSHA256  string `json:"archive_sha256"`
	GoBinarySHA256 string `json:"go_binary_sha256"`
}

package hostprep

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
	"github.com/kilnhq/terraform-provider-kiln/internal/wait"
)

// Archive is a toolchain archive for a host: either streamed from the machine
// running Kiln (Open, verified there) or downloaded by the host itself from
// URL. Either way nothing is renamed into place unless it has SHA256.
type Archive struct {
	// Open reads the archive; its final read fails when the bytes are not the
	// verified ones (gotoolchain.Artifact.Open).
	Open   func() (io.ReadCloser, error)
	Size   int64 // of the streamed archive
	URL    string
	SHA256 string
}

// Host is a host being prepared.
type Host struct {
	Client *remote.Client
	// Dial reconnects after a reboot.
	Dial func(ctx context.Context) (*remote.Client, error)
	// Fetch returns the verified archive of a Go version.
	Fetch func(ctx context.Context, version string) (Archive, error)
	// Log receives progress messages; nil discards them.
	Log func(ctx context.Context, msg string, fields map[string]any)
}

// Verification is what the default toolchain reported after the run.
type Verification struct {
	GoVersion   string // `go version`
	GOROOT      string
	GOPATH      string
	BuildOutput string // what the small program printed
	TestOutput  string // `go test -short` output, when packages were given
}

func (h *Host) log(ctx context.Context, msg string, fields map[string]any) {
	if h.Log != nil {
		if fields == nil {
			fields = map[string]any{}
		}
		fields["host"] = h.Client.Host()
		h.Log(ctx, msg, fields)
	}
}

// Apply brings the host to spec, touching only what differs from what it
// finds, then verifies the default toolchain. Each step is safe to interrupt:
// toolchains are unpacked beside the root and renamed into place only when
// complete and checked, so a half-installed toolchain is never selected.
func (h *Host) Apply(ctx context.Context, spec Spec) (Facts, Verification, error) {
	spec.Root = rootOf(spec)
	if err := spec.Validate(); err != nil {
		return Facts{}, Verification{}, err
	}
	facts, err := ReadFacts(ctx, h.Client, spec)
	if err != nil {
		return Facts{}, Verification{}, err
	}

	envFile := goEnvFile(spec.Env)
	installed := map[string]bool{}
	for _, v := range spec.Versions {
		if t, ok := facts.Toolchains[v]; ok && t.Intact() {
			continue
		}
		if err := h.install(ctx, spec.Root, v, envFile); err != nil {
			return facts, Verification{}, err
		}
		installed[v] = true
	}
	if err := h.configure(ctx, spec, facts, envFile, installed); err != nil {
		return facts, Verification{}, err
	}
	switch {
	case spec.CgroupV2 == "enable" && !facts.CgroupV2():
		if err := h.enableCgroupV2(ctx); err != nil {
			return facts, Verification{}, err
		}
	case spec.CgroupV2 == "verify" && !facts.CgroupV2():
		return facts, Verification{}, fmt.Errorf("%s: cgroup v2 is not active (/sys/fs/cgroup is %q); set cgroup_v2 = \"enable\" to switch with a reboot",
			h.Client.Host(), facts.CgroupFS)
	}

	if facts, err = ReadFacts(ctx, h.Client, spec); err != nil {
		return facts, Verification{}, err
	}
	verification, err := h.verify(ctx, spec)
	return facts, verification, err
}

// configure makes every change besides toolchain installs that the facts
// call for, in one batch; envFile is the rendered go.env.
func (h *Host) configure(ctx context.Context, spec Spec, facts Facts, envFile string, installed map[string]bool) error {
	var b batch
	for _, v := range spec.Versions {
		if !installed[v] && !sameEnv(facts.Toolchains[v].Env, spec.Env) {
			b.add("write go.env of go"+v, writeFileScript(spec.Root+"/"+v+"/go.env", envFile))
		}
	}
	if spec.Default != "" && (facts.Default != spec.Default || facts.GoLink != spec.Root+"/current/bin/go") {
		b.add("select go"+spec.Default+" as the default", fmt.Sprintf(`root=%s
ln -sfn %s "$root/.current.tmp"
mv -T "$root/.current.tmp" "$root/current"
ln -sfn "$root/current/bin/go" /usr/local/bin/go
ln -sfn "$root/current/bin/gofmt" /usr/local/bin/gofmt`, remote.ShellQuote(spec.Root), remote.ShellQuote(spec.Default)))
	}
	if spec.RemoveUndeclared {
		var stale []string
		for v := range facts.Toolchains {
			if !slices.Contains(spec.Versions, v) {
				stale = append(stale, remote.ShellQuote(spec.Root+"/"+v))
			}
		}
		if len(stale) > 0 {
			sort.Strings(stale)
			b.add("remove undeclared toolchains", "rm -rf "+strings.Join(stale, " "))
		}
	}
	if spec.SwapOff && !facts.SwapOff() {
		b.add("swap off", swapOffScript)
	}
	if (spec.NoFile > 0 || spec.NProc > 0) && (facts.NoFile != spec.NoFile || facts.NProc != spec.NProc) {
		b.add("write limits", writeFileScript(limitsPath, limitsFile(spec.NoFile, spec.NProc)))
		b.add("write service limits", writeFileScript(systemdLimitsPath, systemdLimitsFile(spec.NoFile, spec.NProc)))
		// systemd takes new service defaults on a re-exec, which takes seconds
		// on a slow host and need not hold up the rest of the run.
		b.add("reload systemd", "if command -v systemctl >/dev/null; then (systemctl daemon-reexec >/dev/null 2>&1 &); fi")
	}
	if len(spec.Sysctls) > 0 && !sameMap(facts.Sysctls, spec.Sysctls) {
		b.add("write sysctls", writeFileScript(sysctlPath, sysctlFile(spec.Sysctls)))
		b.add("apply sysctls", "sysctl -q -p "+sysctlPath)
	}
	if spec.GoCacheTmpfsMiB > 0 && facts.GoCacheTmpfsMiB != spec.GoCacheTmpfsMiB {
		b.add("mount tmpfs GOCACHE", fmt.Sprintf(goCacheTmpfsScript, remote.ShellQuote(spec.GoCacheUser), spec.GoCacheTmpfsMiB))
	}
	if len(b.steps) == 0 {
		return nil
	}
	h.log(ctx, "configuring the host", map[string]any{"steps": b.names()})
	return b.run(ctx, h.Client)
}

// install puts a verified toolchain in place: unpacked beside the root, given
// its go.env and Kiln's marker, and renamed into place only once complete.
//
// A streamed archive is hashed and inspected on this side as it goes out (the
// SSH channel delivers it intact), and the host commits what it unpacked only
// on the verdict line that follows the archive. An archive the host fetches
// itself is hashed, and its go command run, on the host.
func (h *Host) install(ctx context.Context, root, version, goEnv string) error {
	archive, err := h.Fetch(ctx, version)
	if err != nil {
		return err
	}
	step := "install go" + version
	fields := map[string]any{"version": version, "archive_sha256": archive.SHA256}
	var (
		unpack string
		stdin  io.Reader
		sealed *sealedArchive
	)
	if archive.URL != "" {
		fields["fetched_by_host_from"] = archive.URL
		unpack = hostFetchScript("curl -fsSL --retry 2 " + remote.ShellQuote(archive.URL))
	} else {
		rc, err := archive.Open()
		if err != nil {
			return err
		}
		defer rc.Close()
		sealed = sealArchive(rc, version)
		defer sealed.stop()
		stdin = sealed
		unpack = fmt.Sprintf(streamedUnpack, archive.Size)
	}
	h.log(ctx, "installing toolchain", fields)
	start := time.Now()
	script := fmt.Sprintf(installPrologue, remote.ShellQuote(root), remote.ShellQuote(version), remote.ShellQuote(archive.SHA256)) +
		unpack + fmt.Sprintf(installCommit, remote.ShellQuote(goEnv), markerName)
	if _, err := h.Client.RunInput(ctx, step, "bash -c "+remote.ShellQuote(script), stdin); err != nil {
		if sealed != nil {
			if refused := sealed.refusal(); refused != nil {
				return fmt.Errorf("%s: step %q: %w; nothing was installed", h.Client.Host(), step, refused)
			}
		}
		return err
	}
	h.log(ctx, "installed toolchain", map[string]any{"version": version, "seconds": time.Since(start).Seconds()})
	return nil
}

// The install script: a prologue, one of the two ways of unpacking into
// $tmp that leave bin/go's hash in $gosum, and the commit.
const (
	installPrologue = `set -euo pipefail
root=%s v=%s want=%s
tmp="$root/.kiln-tmp-$v"
rm -rf "$tmp" "$tmp.sha256" "$tmp.fifo"
mkdir -p "$tmp"
`
	streamedUnpack = `head -c %d | tar -xzf - -C "$tmp" --no-same-owner
read -r verdict gosum || true
if [ "$verdict" != commit ]; then
	rm -rf "$tmp"
	echo "the sender did not vouch for the archive (${verdict:-stream ended}): nothing installed" >&2
	exit 1
fi
`
	installCommit = `printf '%%s' %s >"$tmp/go/go.env"
fp=$(stat -c '%%i:%%s:%%.9Z' "$tmp/go/bin/go")
printf 'archive=%%s go=%%s stat=%%s\n' "$want" "$gosum" "$fp" >"$tmp/go/%s"
if [ -e "$root/$v" ]; then mv "$root/$v" "$tmp/previous"; fi
mv "$tmp/go" "$root/$v"
rm -rf "$tmp" "$tmp.sha256"
`
)

// hostFetchScript unpacks what fetch prints, hashing it on the way (tee feeds
// the hasher and tar at once, so the archive is read a single time).
func hostFetchScript(fetch string) string {
	return `mkfifo "$tmp.fifo"
sha256sum <"$tmp.fifo" | cut -d' ' -f1 >"$tmp.sha256" &
hasher=$!
` + fetch + ` | tee "$tmp.fifo" | tar -xzf - -C "$tmp" --no-same-owner
wait "$hasher"
rm -f "$tmp.fifo"
got=$(cat "$tmp.sha256")
if [ "$got" != "$want" ]; then
	echo "archive arrived with sha256 $got, want $want" >&2
	rm -rf "$tmp" "$tmp.sha256"
	exit 1
fi
out=$("$tmp/go/bin/go" version)
case "$out" in *"go$v "*) ;; *) echo "bin/go reports '$out', want go$v" >&2; exit 1 ;; esac
gosum=$(sha256sum "$tmp/go/bin/go" | cut -d' ' -f1)
`
}

const swapOffScript = `set -e
swapoff -a
sed -i -E '/^[[:space:]]*#/!{/[[:space:]]swap[[:space:]]/s/^/#kiln# /}' /etc/fstab
if command -v systemctl >/dev/null; then
	for u in $( (systemctl list-unit-files --type=swap --no-legend; systemctl list-units --type=swap --all --plain --no-legend) 2>/dev/null | awk '{print $1}' | sort -u); do
		systemctl mask "$u" >/dev/null 2>&1 || true
	done
fi`

// goCacheTmpfsScript mounts a tmpfs, owned by the user, on the user's default
// GOCACHE and lists it in /etc/fstab; a mounted one is resized in place.
const goCacheTmpfsScript = `set -e
u=%s mib=%d
home=$(getent passwd "$u" | cut -d: -f6)
[ -n "$home" ] || { echo "no user $u on the host" >&2; exit 1; }
uid=$(id -u "$u") gid=$(id -g "$u")
[ -d "$home/.cache" ] || install -d -o "$uid" -g "$gid" -m 0755 "$home/.cache"
d="$home/.cache/go-build"
mkdir -p "$d"
opts="size=${mib}m,uid=$uid,gid=$gid,mode=0700,nosuid,nodev"
awk -v d="$d" '$2 != d' /etc/fstab >/etc/fstab.kiln-tmp
echo "tmpfs $d tmpfs $opts 0 0" >>/etc/fstab.kiln-tmp
mv /etc/fstab.kiln-tmp /etc/fstab
if mountpoint -q "$d"; then mount -o "remount,$opts" "$d"; else mount "$d"; fi`

// enableCgroupV2 puts the unified hierarchy on the kernel command line, reboots
// and waits for the host to come back on cgroup v2.
func (h *Host) enableCgroupV2(ctx context.Context) error {
	h.log(ctx, "enabling cgroup v2 (kernel command line and reboot)", nil)
	script := `set -e
sed -i -E 's/ ?systemd\.unified_cgroup_hierarchy=[^ "]*//g' /etc/default/grub
sed -i -E 's/^GRUB_CMDLINE_LINUX="(.*)"/GRUB_CMDLINE_LINUX="\1 ` + cgroupV2Param + `"/' /etc/default/grub
update-grub`
	if _, err := h.Client.Run(ctx, "enable cgroup v2", script); err != nil {
		return err
	}
	if err := h.reboot(ctx); err != nil {
		return err
	}
	out, err := h.Client.Run(ctx, "check cgroup v2", "stat -fc %T /sys/fs/cgroup")
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) != "cgroup2fs" {
		return fmt.Errorf("%s: still not on cgroup v2 after the reboot (/sys/fs/cgroup is %q)", h.Client.Host(), strings.TrimSpace(out))
	}
	return nil
}

// reboot restarts the host and reconnects once it has booted again.
func (h *Host) reboot(ctx context.Context) error {
	bootID, err := h.Client.Run(ctx, "read boot id", "cat /proc/sys/kernel/random/boot_id")
	if err != nil {
		return err
	}
	h.log(ctx, "rebooting", nil)
	// The connection drops as the host goes down: that error is expected.
	_, _ = h.Client.Run(ctx, "reboot", "(sleep 1; systemctl reboot) >/dev/null 2>&1 &")
	h.Client.Close()
	err = wait.Until(ctx, h.Client.Host()+" to come back from a reboot", wait.Default, func(ctx context.Context) (bool, error) {
		c, err := h.Dial(ctx)
		if err != nil {
			return false, wait.Transient(err)
		}
		id, err := c.Run(ctx, "read boot id", "cat /proc/sys/kernel/random/boot_id")
		if err == nil && id != bootID {
			h.Client = c
			return true, nil
		}
		c.Close()
		return false, wait.Transient(err)
	})
	if err != nil {
		return err
	}
	h.log(ctx, "back after reboot", nil)
	return nil
}

// verify runs the default toolchain as the login user, as a build there would.
func (h *Host) verify(ctx context.Context, spec Spec) (Verification, error) {
	if spec.Default == "" {
		return Verification{}, nil
	}
	goBin := remote.ShellQuote(spec.Root + "/" + spec.Default + "/bin/go")
	out, err := h.Client.RunAsUser(ctx, "verify go version", goBin+" version && "+goBin+" env GOROOT GOPATH")
	if err != nil {
		return Verification{}, err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var v Verification
	if len(lines) == 3 {
		v.GoVersion, v.GOROOT, v.GOPATH = lines[0], lines[1], lines[2]
	}
	if spec.VerifyBuild {
		// println keeps the build to the runtime's packages: under emulation a
		// program importing fmt takes minutes to build from a cold cache.
		h.log(ctx, "building and running a test program", nil)
		script := `set -e
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
cd "$d"
printf 'package main\n\nfunc main() { println("kiln-verify-ok") }\n' >main.go
` + goBin + ` run main.go 2>&1`
		out, err := h.Client.RunAsUser(ctx, "verify build", script)
		if err != nil {
			return v, err
		}
		v.BuildOutput = strings.TrimSpace(out)
	}
	if len(spec.TestPackages) > 0 {
		h.log(ctx, "testing std packages", map[string]any{"packages": spec.TestPackages})
		quoted := make([]string, len(spec.TestPackages))
		for i, p := range spec.TestPackages {
			quoted[i] = remote.ShellQuote(p)
		}
		out, err := h.Client.RunAsUser(ctx, "verify go test", goBin+" test -short "+strings.Join(quoted, " "))
		if err != nil {
			return v, err
		}
		v.TestOutput = strings.TrimSpace(out)
	}
	return v, nil
}

// writeFileScript replaces path's content atomically.
func writeFileScript(path, content string) string {
	p, tmp := remote.ShellQuote(path), remote.ShellQuote(path+".kiln-tmp")
	return fmt.Sprintf("mkdir -p \"$(dirname %s)\"\nprintf '%%s' %s >%s\nchmod 0644 %s\nmv %s %s",
		p, remote.ShellQuote(content), tmp, tmp, tmp, p)
}

func sameEnv(got, want map[string]string) bool {
	for _, k := range EnvKeys {
		w, ok := want[k]
		if !ok {
			w = goEnvDefaults[k]
		}
		if got[k] != w {
			return false
		}
	}
	return true
}

func sameMap(got, want map[string]string) bool {
	for k, v := range want {
		if strings.Join(strings.Fields(got[k]), " ") != strings.Join(strings.Fields(v), " ") {
			return false
		}
	}
	return true
}

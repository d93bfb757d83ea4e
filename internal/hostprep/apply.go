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
// running Kiln (Open, already verified there) or downloaded by the host itself
// from URL. Either way the host checks SHA256 before anything is renamed into place.
type Archive struct {
	Open   func() (io.ReadCloser, error)
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

	for _, v := range spec.Versions {
		if t, ok := facts.Toolchains[v]; ok && t.Intact() {
			continue
		}
		if err := h.install(ctx, spec.Root, v); err != nil {
			return facts, Verification{}, err
		}
	}
	envFile := goEnvFile(spec.Env)
	for _, v := range spec.Versions {
		if t := facts.Toolchains[v]; t.Intact() && sameEnv(t.Env, spec.Env) {
			continue
		}
		h.log(ctx, "writing go.env", map[string]any{"version": v})
		if err := h.writeFile(ctx, "write go.env", spec.Root+"/"+v+"/go.env", envFile); err != nil {
			return facts, Verification{}, err
		}
	}
	if spec.Default != "" && (facts.Default != spec.Default || facts.GoLink != spec.Root+"/current/bin/go") {
		h.log(ctx, "selecting default toolchain", map[string]any{"version": spec.Default})
		script := fmt.Sprintf(`set -e
root=%s
ln -sfn %s "$root/.current.tmp"
mv -T "$root/.current.tmp" "$root/current"
ln -sfn "$root/current/bin/go" /usr/local/bin/go
ln -sfn "$root/current/bin/gofmt" /usr/local/bin/gofmt`, remote.ShellQuote(spec.Root), remote.ShellQuote(spec.Default))
		if _, err := h.Client.Run(ctx, "select default toolchain", script); err != nil {
			return facts, Verification{}, err
		}
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
			h.log(ctx, "removing undeclared toolchains", map[string]any{"paths": stale})
			if _, err := h.Client.Run(ctx, "remove undeclared toolchains", "rm -rf "+strings.Join(stale, " ")); err != nil {
				return facts, Verification{}, err
			}
		}
	}

	if spec.SwapOff && !facts.SwapOff() {
		h.log(ctx, "turning swap off", nil)
		if _, err := h.Client.Run(ctx, "swap off", swapOffScript); err != nil {
			return facts, Verification{}, err
		}
	}
	if (spec.NoFile > 0 || spec.NProc > 0) && (facts.NoFile != spec.NoFile || facts.NProc != spec.NProc) {
		h.log(ctx, "setting limits", map[string]any{"nofile": spec.NoFile, "nproc": spec.NProc})
		if err := h.writeFile(ctx, "write limits", limitsPath, limitsFile(spec.NoFile, spec.NProc)); err != nil {
			return facts, Verification{}, err
		}
		if err := h.writeFile(ctx, "write service limits", systemdLimitsPath, systemdLimitsFile(spec.NoFile, spec.NProc)); err != nil {
			return facts, Verification{}, err
		}
		if _, err := h.Client.Run(ctx, "reload systemd", "if command -v systemctl >/dev/null; then systemctl daemon-reexec; fi"); err != nil {
			return facts, Verification{}, err
		}
	}
	if len(spec.Sysctls) > 0 && !sameMap(facts.Sysctls, spec.Sysctls) {
		h.log(ctx, "setting sysctls", map[string]any{"sysctls": spec.Sysctls})
		if err := h.writeFile(ctx, "write sysctls", sysctlPath, sysctlFile(spec.Sysctls)); err != nil {
			return facts, Verification{}, err
		}
		if _, err := h.Client.Run(ctx, "apply sysctls", "sysctl -q -p "+sysctlPath); err != nil {
			return facts, Verification{}, err
		}
	}
	if spec.GoCacheTmpfsMiB > 0 && facts.GoCacheTmpfsMiB != spec.GoCacheTmpfsMiB {
		h.log(ctx, "mounting a tmpfs GOCACHE", map[string]any{"user": spec.GoCacheUser, "mib": spec.GoCacheTmpfsMiB})
		script := fmt.Sprintf(goCacheTmpfsScript, remote.ShellQuote(spec.GoCacheUser), spec.GoCacheTmpfsMiB)
		if _, err := h.Client.Run(ctx, "mount tmpfs GOCACHE", script); err != nil {
			return facts, Verification{}, err
		}
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

// install streams a verified archive to the host, checks on the host that what
// arrived has the verified SHA-256 and that bin/go reports the version, and
// only then renames it into place.
func (h *Host) install(ctx context.Context, root, version string) error {
	archive, err := h.Fetch(ctx, version)
	if err != nil {
		return err
	}
	// The archive arrives on stdin, or the host fetches it; tee feeds the
	// hasher and tar at once so the archive is read a single time.
	feed, stdin := `tee "$tmp.fifo"`, io.Reader(nil)
	if archive.URL != "" {
		feed = "curl -fsSL --retry 2 " + remote.ShellQuote(archive.URL) + ` | tee "$tmp.fifo"`
	} else {
		rc, err := archive.Open()
		if err != nil {
			return err
		}
		defer rc.Close()
		stdin = rc
	}
	fields := map[string]any{"version": version, "archive_sha256": archive.SHA256}
	if archive.URL != "" {
		fields["fetched_by_host_from"] = archive.URL
	}
	h.log(ctx, "installing toolchain", fields)
	start := time.Now()
	script := fmt.Sprintf(`set -euo pipefail
root=%s v=%s want=%s
tmp="$root/.kiln-tmp-$v"
rm -rf "$tmp" "$tmp.sha256" "$tmp.fifo"
mkdir -p "$tmp"
mkfifo "$tmp.fifo"
sha256sum <"$tmp.fifo" | cut -d' ' -f1 >"$tmp.sha256" &
hasher=$!
%s | tar -xzf - -C "$tmp" --no-same-owner
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
printf 'archive=%%s go=%%s\n' "$want" "$(sha256sum "$tmp/go/bin/go" | cut -d' ' -f1)" >"$tmp/go/%s"
if [ -e "$root/$v" ]; then mv "$root/$v" "$tmp/previous"; fi
mv "$tmp/go" "$root/$v"
rm -rf "$tmp" "$tmp.sha256"`, remote.ShellQuote(root), remote.ShellQuote(version), remote.ShellQuote(archive.SHA256), feed, markerName)
	if _, err := h.Client.RunInput(ctx, "install go"+version, "bash -c "+remote.ShellQuote(script), stdin); err != nil {
		return err
	}
	h.log(ctx, "installed toolchain", map[string]any{"version": version, "seconds": time.Since(start).Seconds()})
	return nil
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
	err = wait.Until(ctx, h.Client.Host()+" to come back from a reboot", wait.Default, func(ctx context.Context) (bool, error, error) {
		c, err := h.Dial(ctx)
		if err != nil {
			return false, err, nil
		}
		id, err := c.Run(ctx, "read boot id", "cat /proc/sys/kernel/random/boot_id")
		if err == nil && id != bootID {
			h.Client = c
			return true, nil, nil
		}
		c.Close()
		return false, err, nil
	})
	if err != nil {
		return err
	}
	h.log(ctx, "back after reboot", nil)
	return nil
}

func (h *Host) verify(ctx context.Context, spec Spec) (Verification, error) {
	if spec.Default == "" {
		return Verification{}, nil
	}
	goBin := remote.ShellQuote(spec.Root + "/" + spec.Default + "/bin/go")
	out, err := h.Client.Run(ctx, "verify go version", goBin+" version && "+goBin+" env GOROOT GOPATH")
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
		out, err := h.Client.Run(ctx, "verify build", script)
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
		out, err := h.Client.Run(ctx, "verify go test", goBin+" test -short "+strings.Join(quoted, " "))
		if err != nil {
			return v, err
		}
		v.TestOutput = strings.TrimSpace(out)
	}
	return v, nil
}

// writeFile replaces path's content atomically.
func (h *Host) writeFile(ctx context.Context, step, path, content string) error {
	p := remote.ShellQuote(path)
	tmp := remote.ShellQuote(path + ".kiln-tmp")
	cmd := fmt.Sprintf("mkdir -p \"$(dirname %s)\" && cat >%s && chmod 0644 %s && mv %s %s", p, tmp, tmp, tmp, p)
	_, err := h.Client.RunInput(ctx, step, cmd, strings.NewReader(content))
	return err
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

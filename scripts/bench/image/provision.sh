#!/usr/bin/env bash
# The Go build host's provisioning as Packer's shell provisioner runs it, as
# root, on the guest it bakes (scripts/image-bench.sh): the same work as the
# bench's kiln_go_host. Each toolchain is downloaded from the mirror, checked
# (SHA-256, and the detached signature by the pinned key) before anything is
# unpacked, unpacked beside its place and renamed into it; the first is the
# default. Then the hardening (swap off for good, nofile 65536 for logins and
# services, cgroup v2 checked) and the cheap checks kiln_go_host runs without
# a verify block (go env, the compiler's release).
#
# Environment: MIRROR (the mirror's URL as the guest reaches it), TOOLCHAINS
# ("<version>=<sha256> ..."), FPR (the signing key's primary fingerprint),
# KEYRING (a file holding the armored public key). Last, the image manifest
# goes to /tmp/image.json, which the generalize step (Kiln's own script) reads
# and installs as /etc/kiln/image.json.
set -euo pipefail
root=/usr/local/go
dl=$(mktemp -d /var/tmp/go-dl.XXXXXX)
gnupghome=$(mktemp -d)
trap 'rm -rf "$dl" "$gnupghome"' EXIT
gpg --batch --quiet --homedir "$gnupghome" --import "$KEYRING" 2>/dev/null
mkdir -p "$root"

manifest=() default=""
# shellcheck disable=SC2153 # TOOLCHAINS comes from the environment
for pair in $TOOLCHAINS; do
	v=${pair%%=*} sha=${pair#*=}
	file=go$v.linux-amd64.tar.gz
	curl -fsS -o "$dl/$file" "$MIRROR$file"
	curl -fsS -o "$dl/$file.asc" "$MIRROR$file.asc"
	echo "$sha  $dl/$file" | sha256sum -c --quiet
	status=$(gpg --batch --homedir "$gnupghome" --status-fd 1 --verify "$dl/$file.asc" "$dl/$file" 2>/dev/null || true)
	grep -Eq "^\[GNUPG:\] VALIDSIG .* $FPR\$" <<<"$status"
	rm -rf "$root/.tmp-$v"
	mkdir -p "$root/.tmp-$v"
	tar -C "$root/.tmp-$v" --strip-components=1 --no-same-owner -xzf "$dl/$file"
	rm -f "$dl/$file" "$dl/$file.asc"
	[[ $("$root/.tmp-$v/bin/go" version) == *"go$v "* ]]
	rm -rf "${root:?}/$v"
	mv "$root/.tmp-$v" "$root/$v"
	manifest+=("{\"version\":\"$v\",\"archive_sha256\":\"$sha\",\"go_binary_sha256\":\"$(sha256sum "$root/$v/bin/go" | cut -d' ' -f1)\"}")
	default=${default:-$v}
done
ln -sfn "$default" "$root/current"
ln -sfn "$root/current/bin/go" /usr/local/bin/go
ln -sfn "$root/current/bin/gofmt" /usr/local/bin/gofmt

swapoff -a
sed -i -E '/^[[:space:]]*#/!{/[[:space:]]swap[[:space:]]/s/^/#/}' /etc/fstab
for u in $(systemctl list-unit-files --type=swap --no-legend 2>/dev/null | awk '{print $1}'); do
	systemctl mask "$u" >/dev/null
done
printf '* soft nofile 65536\n* hard nofile 65536\nroot soft nofile 65536\nroot hard nofile 65536\n' \
	>/etc/security/limits.d/90-go-build.conf
mkdir -p /etc/systemd/system.conf.d
printf '[Manager]\nDefaultLimitNOFILE=65536\n' >/etc/systemd/system.conf.d/90-go-build.conf
systemctl daemon-reexec
test "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs

go env GOVERSION GOROOT GOPATH
go tool compile -V

# The manifest kiln_image writes, with the fields this host can give.
# shellcheck source=/dev/null
. /etc/os-release
list=$(
	IFS=,
	echo "${manifest[*]}"
)
printf '{"name":"packer","os":"%s","kernel":"%s","toolchains":[%s]}\n' "$PRETTY_NAME" "$(uname -r)" "$list" >/tmp/image.json

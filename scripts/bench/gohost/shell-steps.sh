# The Go build host as plain shell steps, run as root over one SSH session by
# scripts/gohost-bench.sh, which prepends MIRROR, SHA256, FPR (the signing key's
# primary fingerprint), KEYRING (armored public key), GOPROXY_VALUE and
# GOPRIVATE_VALUE. Same steps as kiln_go_host and the Ansible playbook.
set -euo pipefail
v=1.24.4
root=/usr/local/go
file=go$v.linux-amd64.tar.gz

# Download, check the SHA-256 and the detached signature by the pinned key.
mkdir -p /var/cache/go-dl
cd /var/cache/go-dl
curl -fsS -o "$file" "$MIRROR$file"
curl -fsS -o "$file.asc" "$MIRROR$file.asc"
echo "$SHA256  $file" | sha256sum -c --quiet
gnupghome=$(mktemp -d)
trap 'rm -rf "$gnupghome"' EXIT
printf '%s\n' "$KEYRING" | gpg --batch --quiet --homedir "$gnupghome" --import 2>/dev/null
gpg --batch --homedir "$gnupghome" --status-fd 1 --verify "$file.asc" "$file" 2>/dev/null |
	grep -Eq "^\[GNUPG:\] VALIDSIG .* $FPR\$"

# Unpack beside the root, then rename into place; select it as the default.
rm -rf "$root/.tmp-$v"
mkdir -p "$root/.tmp-$v"
tar -C "$root/.tmp-$v" --strip-components=1 --no-same-owner -xzf "$file"
cat >"$root/.tmp-$v/go.env" <<ENV
GOPRIVATE=$GOPRIVATE_VALUE
GOPROXY=$GOPROXY_VALUE
GOSUMDB=sum.golang.org
GOTOOLCHAIN=auto
ENV
rm -rf "${root:?}/$v"
mv "$root/.tmp-$v" "$root/$v"
ln -sfn "$v" "$root/current"
ln -sfn "$root/current/bin/go" /usr/local/bin/go
ln -sfn "$root/current/bin/gofmt" /usr/local/bin/gofmt
echo "export PATH=\$PATH:$root/current/bin" >/etc/profile.d/go.sh

# Hardening: swap off for good, file limits, sysctls, cgroup v2.
swapoff -a
sed -i -E '/^[[:space:]]*#/!{/[[:space:]]swap[[:space:]]/s/^/#/}' /etc/fstab
printf '* soft nofile 65536\n* hard nofile 65536\nroot soft nofile 65536\nroot hard nofile 65536\n' \
	>/etc/security/limits.d/90-go-build.conf
mkdir -p /etc/systemd/system.conf.d
printf '[Manager]\nDefaultLimitNOFILE=65536\n' >/etc/systemd/system.conf.d/90-go-build.conf
systemctl daemon-reexec
echo 'vm.swappiness = 1' >/etc/sysctl.d/90-go-build.conf
sysctl -q -p /etc/sysctl.d/90-go-build.conf
test "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs

# Verify: go version, then build and run a small program.
go version
d=$(mktemp -d)
cd "$d"
printf 'package main\n\nfunc main() { println("bench-verify-ok") }\n' >main.go
start=$(date +%s.%N)
go run main.go
awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "build_seconds=%.1f\n", b - a }'
cd /
rm -rf "$d"

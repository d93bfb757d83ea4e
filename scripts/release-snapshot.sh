#!/usr/bin/env bash
# Builds a snapshot release into dist/ with goreleaser (.goreleaser.yml; the tool
# is built from tools/goreleaser on first use), as a release would be but unpublished
# and signed with a throwaway GPG key made in a temporary GNUPGHOME. Besides
# goreleaser's files, dist/ then holds the registry manifest under its release name
# (a release uploads it; a snapshot publishes nothing) and the throwaway key's public
# half, signing-key.asc. The checksums and the signature are checked before it ends;
# then .snapshot names the platforms built (one, or "all").
#
#   bash scripts/release-snapshot.sh          # every platform (make release-snapshot)
#   bash scripts/release-snapshot.sh --host   # this machine's platform only (the install test)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dist=$repo/dist
host=false
case ${1:-} in
--host) host=true ;;
"") ;;
*)
	echo "usage: $0 [--host]" >&2
	exit 2
	;;
esac

log() { echo "release-snapshot: $*" >&2; }
# shellcheck source=scripts/testbed-lib.sh
source "$repo/scripts/testbed-lib.sh"

install_missing gpg gpg-agent
bash "$repo/scripts/tools.sh" goreleaser

GNUPGHOME=$(mktemp -d)
export GNUPGHOME
cleanup() {
	gpgconf --kill gpg-agent 2>/dev/null || true
	rm -rf "$GNUPGHOME"
}
trap cleanup EXIT
# dist/.snapshot, written last, tells make the snapshot is complete (goreleaser
# writes metadata.json before it builds).
rm -f "$dist/.snapshot"

gpg --batch --quiet --passphrase '' --quick-gen-key 'Kiln snapshot (throwaway) <snapshot@kiln.invalid>' ed25519 sign never
GPG_FINGERPRINT=$(gpg --batch --with-colons --list-secret-keys | awk -F: '$1 == "fpr" { print $10; exit }')
export GPG_FINGERPRINT

if $host; then
	KILN_RELEASE_TARGET=$(go env GOOS)_$(go env GOARCH)
	export KILN_RELEASE_TARGET
	log "building the snapshot for $KILN_RELEASE_TARGET"
else
	unset KILN_RELEASE_TARGET
	log "building the snapshot for every platform"
fi

start=$SECONDS
(cd "$repo" && "$repo/.tools/bin/goreleaser" release --snapshot --clean)

sums=$(echo "$dist"/*_SHA256SUMS)
manifest=$(awk '$2 ~ /_manifest\.json$/ { print $2 }' "$sums")
cp "$repo/terraform-registry-manifest.json" "$dist/$manifest"
gpg --batch --armor --export "$GPG_FINGERPRINT" >"$dist/signing-key.asc"
(cd "$dist" && sha256sum --check --quiet "$sums")
gpg --batch --quiet --verify "$sums.sig" "$sums" 2>/dev/null

echo "${KILN_RELEASE_TARGET:-all}" >"$dist/.snapshot"
log "done in $((SECONDS - start)) s:"
(cd "$dist" && ls -l -- *.zip *_SHA256SUMS* *_manifest.json signing-key.asc) >&2

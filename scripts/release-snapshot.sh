#!/usr/bin/env bash
# Builds a snapshot release into dist/ with goreleaser (.goreleaser.yml; the tool
# is built from tools/goreleaser on first use), as a release would be but unpublished
# and signed with a throwaway GPG key made in a temporary GNUPGHOME. Besides
# goreleaser's files, dist/ then holds the registry manifest under its release name
# (a release uploads it; a snapshot publishes nothing) and the throwaway key's public
# half, signing-key.asc. The checksums and the signature are checked before it ends;
# then .snapshot names the platforms built (one, or "all").
#
#   bash scripts/release-snapshot.sh                  # every platform (make release-snapshot)
#   bash scripts/release-snapshot.sh --host [INPUT...] # this machine's platform only (the install test)
#
# A host snapshot is kept in ~/.cache/kiln/release under the hash of its inputs'
# contents (the files named after --host): the same sources give the same
# release, and a clean clone need not zip the provider again (a minute of
# goreleaser's best compression).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dist=$repo/dist
host=false
case ${1:-} in
--host)
	host=true
	shift
	;;
"") ;;
*)
	echo "usage: $0 [--host]" >&2
	exit 2
	;;
esac

log() { echo "release-snapshot: $*" >&2; }

cached=""
if $host && [[ $# -gt 0 ]]; then
	key=$(cd "$repo" && sha256sum -- "$@" | sha256sum | cut -c1-16)
	cached=${KILN_CACHE:-$HOME/.cache/kiln}/release/$key
	if [[ -f $cached/.snapshot ]]; then
		rm -rf "$dist"
		cp -a "$cached" "$dist"
		log "cached: $cached"
		exit 0
	fi
fi
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
if [[ -n $cached ]]; then
	# Kept: the three newest host snapshots.
	mkdir -p "${cached%/*}"
	rm -rf "$cached.tmp" && cp -a "$dist" "$cached.tmp" && mv "$cached.tmp" "$cached"
	ls -dt "${cached%/*}"/*/ | tail -n +4 | xargs -r rm -rf
fi
log "done in $((SECONDS - start)) s:"
(cd "$dist" && ls -l -- *.zip *_SHA256SUMS* *_manifest.json signing-key.asc) >&2

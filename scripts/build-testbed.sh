#!/usr/bin/env bash
# Brings up what the build tests push to and fetch from: an OCI registry
# (Debian's docker-registry, distribution 2.8) and a git server (Debian's
# git-http-backend behind internal/testenv/githttpd) holding bare repositories
# the tests create. Both listen on 127.0.0.1 only, behind HTTP basic auth with
# one user from one htpasswd file (bcrypt, made with htpasswd from Debian's
# apache2-utils). There is no systemd here: each daemon runs in the background
# with a PID file and a log under the state directory.
# Idempotent: running daemons are reused after a health check; the password is
# generated once. Prints KEY=VALUE lines the tests read (and writes them to
# $state/env).
#
#   bash scripts/build-testbed.sh        # start (or reuse) the registry and git server
#   bash scripts/build-testbed.sh stop   # stop the daemons this script started
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${KILN_CACHE:-$HOME/.cache/kiln}
state=${KILN_BUILD_STATE:-$cache/build}
registry_port=${KILN_BUILD_REGISTRY_PORT:-15000}
git_port=${KILN_BUILD_GIT_PORT:-15080}
user=kiln
log() { echo "build-testbed: $*" >&2; }

run=$state/run
logs=$state/logs
source "$here/testbed-lib.sh"

if [[ ${1:-} == stop ]]; then
	stop_daemons githttpd registry
	exit 0
fi

# One bring-up at a time: the two CLIs' test runs may call this together.
mkdir -p "$state"
chmod 700 "$state"
exec 8>"$state/bringup.lock"
flock 8

install_missing docker-registry apache2-utils git curl openssl

mkdir -p "$run" "$logs" "$state/registry" "$state/git"

# --- credentials, generated once ----------------------------------------------
if [[ ! -f $state/htpasswd ]]; then
	openssl rand -hex 16 >"$state/password"
	htpasswd -Bbn "$user" "$(cat "$state/password")" | sed '/^$/d' >"$state/htpasswd.tmp"
	mv "$state/htpasswd.tmp" "$state/htpasswd"
fi
password=$(cat "$state/password")

# --- the git server, built from this repository, cached by its source ------------
key=$(cat "$repo/internal/testenv/githttpd/main.go" "$repo/go.sum" | sha256sum | cut -c1-16)
githttpd=$cache/tools/githttpd-$key/githttpd
if [[ ! -x $githttpd ]]; then
	log "building githttpd"
	mkdir -p "$(dirname "$githttpd")"
	(cd "$repo" && CGO_ENABLED=0 go build -trimpath -o "$githttpd.tmp" ./internal/testenv/githttpd)
	mv "$githttpd.tmp" "$githttpd"
fi

cat >"$state/registry.yml" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $state/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$registry_port
  secret: $password
auth:
  htpasswd:
    realm: kiln-test-registry
    path: $state/htpasswd
YAML

# --- daemons ------------------------------------------------------------------
answers() { # url: the server asks unauthenticated clients for credentials
	[[ $(curl -s -o /dev/null -w '%{http_code}' "$1") == 401 ]]
}

start_daemon registry docker-registry serve "$state/registry.yml"
wait_for registry 30 answers "http://127.0.0.1:$registry_port/v2/"
start_daemon githttpd "$githttpd" -listen "127.0.0.1:$git_port" -root "$state/git" -htpasswd "$state/htpasswd"
wait_for githttpd 30 answers "http://127.0.0.1:$git_port/"

{
	echo "KILN_TEST_REGISTRY=127.0.0.1:$registry_port"
	echo "KILN_TEST_REGISTRY_USERNAME=$user"
	echo "KILN_TEST_REGISTRY_PASSWORD=$password"
	echo "KILN_TEST_GIT_URL=http://127.0.0.1:$git_port"
	echo "KILN_TEST_GIT_ROOT=$state/git"
	echo "KILN_TEST_GIT_USERNAME=$user"
	echo "KILN_TEST_GIT_PASSWORD=$password"
} | tee "$state/env"

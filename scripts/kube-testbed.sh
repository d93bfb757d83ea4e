#!/usr/bin/env bash
# Brings up the local Kubernetes control plane the delivery acceptance tests use:
# etcd (Debian's etcd-server, 3.4: no watch progress requests, so the apiserver's
# WatchList streaming is turned off), kube-apiserver, kube-controller-manager and
# kube-scheduler built from tools/kube, and kwok (tools/kwok) with simulated nodes so
# rollouts complete. Everything listens on 127.0.0.1 only; there is no systemd here,
# so each daemon is started in the background with a PID file and a log under the
# state directory.
# Idempotent: a running plane is reused after a health check, and certificates,
# tokens and kubeconfigs are generated once. Prints KEY=VALUE lines the tests read
# (and writes them to $state/env).
#
#   bash scripts/kube-testbed.sh        # start (or reuse) the plane
#   bash scripts/kube-testbed.sh stop   # stop the daemons this script started
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${KILN_CACHE:-$HOME/.cache/kiln}
state=${KILN_KUBE_STATE:-$cache/kube}
etcd_port=${KILN_KUBE_ETCD_PORT:-23790}
etcd_peer_port=${KILN_KUBE_ETCD_PEER_PORT:-23800}
api_port=${KILN_KUBE_API_PORT:-16443}
kcm_port=${KILN_KUBE_KCM_PORT:-16257}
sched_port=${KILN_KUBE_SCHEDULER_PORT:-16259}
kwok_port=${KILN_KUBE_KWOK_PORT:-16247}
nodes=${KILN_KUBE_NODES:-2}
log() { echo "kube-testbed: $*" >&2; }

pki=$state/pki
run=$state/run
logs=$state/logs
bin=$repo/.tools/bin
kubeconfig=$state/admin.kubeconfig

source "$here/testbed-lib.sh"

if [[ ${1:-} == stop ]]; then
	stop_daemons kwok kube-scheduler kube-controller-manager kube-apiserver etcd
	exit 0
fi

# One bring-up at a time: the two CLIs' test runs may call this together.
mkdir -p "$state"
exec 8>"$state/bringup.lock"
flock 8

install_missing etcd-server openssl curl
etcd_bin=$(command -v etcd || echo /usr/bin/etcd)

# The control plane binaries, cached by the pins of their tools modules.
bash "$here/tools.sh" kube kwok >&2

mkdir -p "$pki" "$run" "$logs" "$state/etcd"
chmod 700 "$state"

# --- certificates and tokens, generated once ---------------------------------
cert() { # name subject [serverAltNames]
	local name=$1 subj=$2 san=${3:-}
	[[ -f $pki/$name.crt ]] && return 0
	openssl genrsa -out "$pki/$name.key" 2048 2>/dev/null
	openssl req -new -key "$pki/$name.key" -subj "$subj" -out "$pki/$name.csr" 2>/dev/null
	local ext=$pki/$name.ext
	if [[ -n $san ]]; then
		printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$san" >"$ext"
	else
		printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >"$ext"
	fi
	openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
		-days 3650 -sha256 -extfile "$ext" -out "$pki/$name.crt" 2>/dev/null
	rm -f "$pki/$name.csr" "$ext"
}
if [[ ! -f $pki/ca.crt ]]; then
	log "generating certificates"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -out "$pki/ca.crt" \
		-days 3650 -subj "/CN=kiln-test-ca" 2>/dev/null
fi
cert apiserver "/CN=kube-apiserver" "IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
cert admin "/O=system:masters/CN=kiln-admin"
if [[ ! -f $pki/sa.key ]]; then
	openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
	openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
fi
if [[ ! -f $pki/tokens.csv ]]; then
	tok() { openssl rand -hex 16; }
	{
		echo "$(tok),kiln-admin,kiln-admin,system:masters"
		echo "$(tok),system:kube-controller-manager,system:kube-controller-manager,"
		echo "$(tok),system:kube-scheduler,system:kube-scheduler,"
		echo "$(tok),kwok,kwok,system:masters"
	} >"$pki/tokens.csv"
	chmod 600 "$pki/tokens.csv"
fi
token_of() { awk -F, -v u="$1" '$2 == u { print $1 }' "$pki/tokens.csv"; }

server=https://127.0.0.1:$api_port
write_kubeconfig() { # file user token
	cat >"$1.tmp" <<KC
apiVersion: v1
kind: Config
clusters:
- name: kiln-test
  cluster:
    server: $server
    certificate-authority: $pki/ca.crt
users:
- name: $2
  user:
    token: $3
contexts:
- name: kiln-test
  context:
    cluster: kiln-test
    user: $2
current-context: kiln-test
KC
	chmod 600 "$1.tmp"
	mv "$1.tmp" "$1"
}
write_kubeconfig "$kubeconfig" kiln-admin "$(token_of kiln-admin)"
write_kubeconfig "$state/controller-manager.kubeconfig" system:kube-controller-manager "$(token_of system:kube-controller-manager)"
write_kubeconfig "$state/scheduler.kubeconfig" system:kube-scheduler "$(token_of system:kube-scheduler)"
write_kubeconfig "$state/kwok.kubeconfig" kwok "$(token_of kwok)"

# --- daemons ------------------------------------------------------------------
api() { curl -sf --cacert "$pki/ca.crt" -H "Authorization: Bearer $(token_of kiln-admin)" "$server$1"; }

start_daemon etcd "$etcd_bin" --name kiln-test --data-dir "$state/etcd" \
	--listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
	--listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
	--initial-cluster "kiln-test=http://127.0.0.1:$etcd_peer_port" \
	--listen-metrics-urls "" --unsafe-no-fsync --quota-backend-bytes 4294967296
wait_for etcd 30 curl -sf "http://127.0.0.1:$etcd_port/health"

start_daemon kube-apiserver "$bin/kube-apiserver" \
	--etcd-servers "http://127.0.0.1:$etcd_port" \
	--bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
	--tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
	--client-ca-file "$pki/ca.crt" --token-auth-file "$pki/tokens.csv" \
	--service-account-issuer https://kubernetes.default.svc \
	--service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
	--service-cluster-ip-range 10.0.0.0/24 --authorization-mode RBAC \
	--allow-privileged --enable-priority-and-fairness=false --cert-dir "$state/apiserver-certs" \
	--feature-gates WatchList=false
wait_for kube-apiserver 120 api /readyz

# kwok's simulated nodes report in late on a busy machine; a long grace period
# keeps the node lifecycle controller from marking them (and their pods) not ready.
start_daemon kube-controller-manager "$bin/kube-controller-manager" \
	--kubeconfig "$state/controller-manager.kubeconfig" \
	--authentication-kubeconfig "$state/controller-manager.kubeconfig" \
	--authorization-kubeconfig "$state/controller-manager.kubeconfig" \
	--bind-address 127.0.0.1 --secure-port "$kcm_port" --leader-elect=false \
	--use-service-account-credentials \
	--service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
	--cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
	--node-monitor-grace-period 1h \
	--concurrent-deployment-syncs 10 --concurrent-replicaset-syncs 10 \
	--kube-api-qps 200 --kube-api-burst 400
start_daemon kube-scheduler "$bin/kube-scheduler" \
	--kubeconfig "$state/scheduler.kubeconfig" \
	--authentication-kubeconfig "$state/scheduler.kubeconfig" \
	--authorization-kubeconfig "$state/scheduler.kubeconfig" \
	--bind-address 127.0.0.1 --secure-port "$sched_port" --leader-elect=false \
	--kube-api-qps 200 --kube-api-burst 400
start_daemon kwok "$bin/kwok" --kubeconfig "$state/kwok.kubeconfig" \
	--manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
	--server-address "127.0.0.1:$kwok_port" --node-ip 127.0.0.1 --cidr 10.244.0.0/16

# Simulated nodes kwok keeps Ready; pods scheduled on them are reported Running.
for i in $(seq 0 $((nodes - 1))); do
	name=kwok-node-$i
	api "/api/v1/nodes/$name" >/dev/null 2>&1 && continue
	log "creating node $name"
	curl -sf --cacert "$pki/ca.crt" -H "Authorization: Bearer $(token_of kiln-admin)" \
		-H 'Content-Type: application/json' -X POST "$server/api/v1/nodes" -d @- >/dev/null <<JSON
{"apiVersion":"v1","kind":"Node","metadata":{"name":"$name",
 "annotations":{"kwok.x-k8s.io/node":"fake","node.alpha.kubernetes.io/ttl":"0"},
 "labels":{"kubernetes.io/hostname":"$name","kubernetes.io/os":"linux","kubernetes.io/arch":"amd64","type":"kwok"}},
 "status":{"allocatable":{"cpu":"64","memory":"256Gi","pods":"500"},
  "capacity":{"cpu":"64","memory":"256Gi","pods":"500"}}}
JSON
done
ready_nodes() {
	[[ $(api /api/v1/nodes | tr -d ' \n' | grep -o '"type":"Ready","status":"True"' | wc -l) -ge $nodes ]]
}
wait_for "kwok nodes" 120 ready_nodes
# The controller manager has made the default service account once a namespace is usable.
wait_for "default service account" 60 api /api/v1/namespaces/default/serviceaccounts/default

# A second, less privileged identity for the trust tests: the service account
# "developer" bound to the edit ClusterRole in the namespace kiln-dev, the rights
# a developer usually has in their own namespace (tests may bind it in more).
# Server-side apply keeps this idempotent; the token is a long-lived
# service-account-token Secret the controller manager fills in.
dev_ns=kiln-dev
apply() { # path manifest(JSON)
	curl -sf --cacert "$pki/ca.crt" -H "Authorization: Bearer $(token_of kiln-admin)" \
		-H 'Content-Type: application/apply-patch+yaml' -X PATCH \
		"$server$1?fieldManager=kiln-testbed&force=true" --data-binary @- >/dev/null
}
apply "/api/v1/namespaces/$dev_ns" <<JSON
{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"$dev_ns"}}
JSON
apply "/api/v1/namespaces/$dev_ns/serviceaccounts/developer" <<JSON
{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"developer","namespace":"$dev_ns"}}
JSON
apply "/apis/rbac.authorization.k8s.io/v1/namespaces/$dev_ns/rolebindings/developer-edit" <<JSON
{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"developer-edit","namespace":"$dev_ns"},
 "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"edit"},
 "subjects":[{"kind":"ServiceAccount","name":"developer","namespace":"$dev_ns"}]}
JSON
apply "/api/v1/namespaces/$dev_ns/secrets/developer-token" <<JSON
{"apiVersion":"v1","kind":"Secret","type":"kubernetes.io/service-account-token",
 "metadata":{"name":"developer-token","namespace":"$dev_ns","annotations":{"kubernetes.io/service-account.name":"developer"}}}
JSON
dev_token() { api "/api/v1/namespaces/$dev_ns/secrets/developer-token" | sed -n 's/.*"token": *"\([^"]*\)".*/\1/p' | base64 -d; }
dev_token_ready() { [[ -n $(dev_token) ]]; }
wait_for "developer token" 60 dev_token_ready
write_kubeconfig "$state/developer.kubeconfig" developer "$(dev_token)"

{
	echo "KILN_TEST_KUBECONFIG=$kubeconfig"
	echo "KILN_TEST_KUBE_HOST=$server"
	echo "KILN_TEST_KUBE_CA=$pki/ca.crt"
	echo "KILN_TEST_KUBE_TOKEN_FILE=$pki/tokens.csv"
	echo "KILN_TEST_KUBE_CLIENT_CERT=$pki/admin.crt"
	echo "KILN_TEST_KUBE_CLIENT_KEY=$pki/admin.key"
	echo "KILN_TEST_KUBE_NODES=$nodes"
	echo "KILN_TEST_KUBE_DEVELOPER_KUBECONFIG=$state/developer.kubeconfig"
	echo "KILN_TEST_KUBE_DEVELOPER_NAMESPACE=$dev_ns"
	echo "KILN_TEST_KUBE_STATE=$state"
} | tee "$state/env"

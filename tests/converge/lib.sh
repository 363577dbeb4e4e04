# Shared helpers for the live convergence suites: real lab hosts (sshd, etcd, PostgreSQL 15,
# Patroni 3.0.2) driven by the real pgconverge binary. Sourced by each *.sh here.
# Needs root (namespaces); exits 77 (CTest "skipped") when a prerequisite is missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PGC=${PGC_BINARY:?PGC_BINARY must point at the pgconverge binary}
LAB=$ROOT/tests/lab/lab
# Which lab: PGC_LAB_ID (CTest gives each suite one, so that two suites can run at once).
export PGC_LAB_ID=${PGC_LAB_ID:-0}
if [[ $PGC_LAB_ID == 0 ]]; then export PGC_LAB_DIR=${PGC_LAB_DIR:-/tmp/pgconverge-lab}
else export PGC_LAB_DIR=${PGC_LAB_DIR:-/tmp/pgconverge-lab$PGC_LAB_ID}; fi

skip() { echo "SKIPPED: $*"; exit 77; }
[[ $(id -u) -eq 0 ]] || skip "needs root to create network namespaces"
for tool in ip unshare runsvdir sshd patroni etcd jq psql; do
  command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] || skip "missing $tool (run scripts/install-deps)"
done
[[ -x $PGC ]] || skip "pgconverge not built at $PGC"

WORK=$(mktemp -d /tmp/pgc-converge.XXXXXX)
CLUSTER_DIR=$WORK/cluster
STATE=$WORK/state
mkdir -p "$CLUSTER_DIR"

cleanup() {
  local rc=$?
  [[ $rc -eq 0 ]] || { echo "--- lab status at failure"; "$LAB" status || true; }
  "$LAB" down >/dev/null 2>&1 || "$LAB" down || true
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT

step() { printf '\n=== %s (%ss)\n' "$*" "$SECONDS"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

lab_up() {
  "$LAB" down >/dev/null 2>&1 || true
  "$LAB" up "$1"
  # shellcheck source=/dev/null
  source "$PGC_LAB_DIR/lab.env"
}

# pgc COMMAND [ARGS...]: pgconverge in the client namespace against the lab's hosts and $CLUSTER_DIR.
pgc() {
  local cmd=$1; shift
  "$LAB" run "$PGC" "$cmd" -s "$LAB_MANIFESTS" -s "$CLUSTER_DIR" --ssh-identity "$LAB_SSH_KEY" \
    --known-hosts "$LAB_KNOWN_HOSTS" --state-dir "$STATE" --ssh-connect-timeout "${PGC_SSH_CONNECT_TIMEOUT:-10}" "$@"
}

# expect_exit CODE COMMAND...: runs COMMAND, prints its output, fails unless it exits with CODE.
expect_exit() {
  local want=$1; shift
  local rc=0
  "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  cat "$WORK/out"; cat "$WORK/err" >&2
  [[ $rc -eq $want ]] || fail "expected exit $want, got $rc from: $*"
}

# write_cluster NAME MODE INSTANCES [SYNC_INSTANCES] [ROLE] [GROUPS_YAML]
write_cluster() {
  local name=$1 mode=$2 instances=$3 sync=${4:-1} role=${5:-ha-read} groups=${6:-}
  cat >"$CLUSTER_DIR/cluster.yaml" <<YAML
apiVersion: stackgres.io/v1
kind: SGPostgresConfig
metadata: {name: pgconfig1}
spec:
  postgresVersion: "15"
  postgresql.conf:
    wal_sender_timeout: 5s
    max_connections: "100"
---
apiVersion: stackgres.io/v1
kind: SGCluster
metadata:
  name: $name
  annotations: {pgconverge.io/client-cidrs: $LAB_CLIENT_ADDRESS/32}  # the client namespace: tests and pgconverge
spec:
  postgres: {version: "15"}
  instances: $instances
  configurations:
    sgPostgresConfig: pgconfig1
    patroni:
      dynamicConfig: {ttl: 10, loop_wait: 1, retry_timeout: 4}
  pods:
    scheduling:
      nodeSelector: {pgconverge.io/lab: "true"}
  replication:
    mode: $mode
    role: $role
    syncInstances: $sync
$groups
YAML
}

# write_managed_etcd HOST...: an EtcdCluster "dcs" that pgconverge runs on these lab hosts (spec.hosts),
# on TLS (the default); ETCD_TLS=false writes spec.tls.enabled: false (plain HTTP).
write_managed_etcd() {
  local hosts
  hosts=$(IFS=,; echo "$*")
  cat >"$CLUSTER_DIR/etcd.yaml" <<YAML
apiVersion: pgconverge.io/v1
kind: EtcdCluster
metadata: {name: dcs}
spec:
  hosts: [$hosts]
YAML
  [[ ${ETCD_TLS:-true} == true ]] || echo "  tls: {enabled: false}" >>"$CLUSTER_DIR/etcd.yaml"
}

# etcd_client_certificate NAME [CA-FILE]: $WORK/NAME.{crt,key}, a client certificate (clientAuth)
# signed by the managed etcd's CA in the state dir (or CA-FILE, key and certificate in one file),
# and $WORK/etcd-ca.crt, that CA's certificate: for etcdctl and curl from the client namespace.
etcd_client_certificate() {
  local name=$1 ca=${2:-$STATE/tls/etcd/dcs.ca.pem}
  sed -n '/BEGIN CERTIFICATE/,/END CERTIFICATE/p' "$STATE/tls/etcd/dcs.ca.pem" >"$WORK/etcd-ca.crt"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/$name.key" \
    -subj "/CN=$name" -out "$WORK/$name.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >"$WORK/$name.ext"
  openssl x509 -req -in "$WORK/$name.csr" -CA "$ca" -CAkey "$ca" -set_serial "$RANDOM$RANDOM" -days 1 \
    -extfile "$WORK/$name.ext" -out "$WORK/$name.crt" 2>/dev/null
}

# managed_etcdctl ARGS...: etcdctl from the client namespace against every managed etcd member
# (https), with a client certificate from its CA (made once).
managed_etcdctl() {
  local endpoints
  endpoints=$(printf 'https://%s:2379,' $LAB_HOST_ADDRESSES); endpoints=${endpoints%,}
  [[ -s $WORK/etcd-client.crt ]] || etcd_client_certificate etcd-client
  "$LAB" run env ETCDCTL_API=3 etcdctl --endpoints="$endpoints" --cacert "$WORK/etcd-ca.crt" \
    --cert "$WORK/etcd-client.crt" --key "$WORK/etcd-client.key" --dial-timeout=2s "$@"
}

secret() { jq -r ".$2" "$STATE/secrets/default.$1.json"; }

# patroni_curl ADDRESS PATH [CURL ARGS...]: Patroni's REST API of the member at ADDRESS, from the
# client namespace, over https verified against the clusters' CAs in the state dir (members serve
# https only while spec.postgres.ssl is on, the default).
patroni_curl() {
  local address=$1 path=$2; shift 2
  cat "$STATE"/tls/*.ca.pem 2>/dev/null | sed -n '/BEGIN CERTIFICATE/,/END CERTIFICATE/p' >"$WORK/patroni-ca.pem"
  "$LAB" run curl -s --cacert "$WORK/patroni-ca.pem" "$@" "https://$address:8008$path"
}

# sql CLUSTER ADDRESS SQL [TIMEOUT]: runs SQL as postgres from the client namespace.
sql() {
  local cluster=$1 address=$2 query=$3 limit=${4:-15}
  "$LAB" run env PGPASSWORD="$(secret "$cluster" superuser)" PGCONNECT_TIMEOUT=5 \
    timeout "$limit" psql -h "$address" -U postgres -d postgres -XAtqc "$query"
}

# status_json CLUSTER: pgconverge status -o json for one cluster.
status_json() { pgc status "$1" -o json; }

# leader_address CLUSTER
leader_address() { status_json "$1" | jq -r '.clusters[0].members[] | select(.role=="Leader") | .host'; }

# role_counts CLUSTER: "Leader:1 Replica:1 Sync Standby:2" (sorted), from pgconverge status.
role_counts() {
  status_json "$1" | jq -r '[.clusters[0].members[].role] | group_by(.) | map("\(.[0]):\(length)") | join(" ")'
}

# check_replication CLUSTER EXPECTED_SYNC: PostgreSQL and Patroni agree on the sync standbys.
check_replication() {
  local cluster=$1 want=$2 leader pg_sync patroni_sync names
  leader=$(leader_address "$cluster")
  [[ -n $leader ]] || fail "no leader"
  pg_sync=$(sql "$cluster" "$leader" "select count(*) from pg_stat_replication where sync_state='sync'")
  names=$(sql "$cluster" "$leader" "show synchronous_standby_names")
  patroni_sync=$(status_json "$cluster" | jq '[.clusters[0].members[] | select(.role=="Sync Standby")] | length')
  echo "check: synchronous_standby_names='$names' pg sync=$pg_sync patroni sync=$patroni_sync want=$want"
  [[ $pg_sync -eq $want ]] || fail "pg_stat_replication has $pg_sync sync replicas, want $want"
  [[ $patroni_sync -eq $want ]] || fail "Patroni shows $patroni_sync sync standbys, want $want"
  if [[ $want -eq 0 ]]; then
    [[ -z $names ]] || fail "synchronous_standby_names is '$names', want empty"
  else
    [[ -n $names ]] || fail "synchronous_standby_names is empty, want $want sync standbys"
  fi
}

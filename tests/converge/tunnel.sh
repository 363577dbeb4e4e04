#!/usr/bin/env bash
# Only SSH reaches the hosts: the client namespace (where pgconverge runs) may open tcp/22 to the
# lab's hosts and nothing else (nftables inside that namespace), and the cluster's pg_hba admits no
# client CIDR. pgconverge reaches Patroni's REST API and PostgreSQL through each host's SSH
# (providers/ssh/tunnels), so the seed strict-sync SGCluster as written (its major aside) converges
# and a plan afterwards is empty; then TLS between the hosts is checked on it.
# The DCS (the lab's etcd namespace, spec.endpoints) stays direct. Then the same with an etcd that
# pgconverge runs on the hosts (EtcdCluster spec.hosts): its client port is filtered too, and the
# first bootstrap's DCS check (does etcd hold the cluster already?) goes through the hosts' SSH.
source "$(dirname "$0")/lib.sh"
command -v nft >/dev/null || [[ -x /usr/sbin/nft ]] || skip "missing nft (apt-get install nftables)"
lab_up 4

# filter_to_ssh: the client namespace may open tcp/22 to the lab's hosts and nothing else.
filter_to_ssh() {
  local hosts
  hosts=$(tr ' ' ',' <<<"$LAB_HOST_ADDRESSES")
  "$LAB" run nft -f - <<NFT
table inet pgc_tunnel_test {
  chain out {
    type filter hook output priority 0; policy accept;
    ip daddr { $hosts } tcp dport 22 accept
    ip daddr { $hosts } reject
  }
}
NFT
}

step "the client namespace may reach the hosts on tcp/22 only"
filter_to_ssh
first=${LAB_HOST_ADDRESSES%% *}
if "$LAB" run curl -s --max-time 3 "http://$first:8008/" >/dev/null 2>&1; then
  fail "Patroni's port on $first still answers from the client namespace"
fi
"$LAB" run bash -c "exec 3<>/dev/tcp/$first/5432" 2>/dev/null && fail "PostgreSQL's port on $first still answers"
"$LAB" ssh pg-1 true || fail "ssh to pg-1 does not work through the filter"
echo "tcp/8008 and tcp/5432 refused, tcp/22 open"

step "the seed strict-sync SGCluster as written converges through SSH alone, within --wait-timeout 240"
# examples/seeds/strict-sync is the StackGres page's cluster unchanged: no pgconverge annotation
# (so no client CIDR in pg_hba), Patroni's default timings (ttl 30, loop_wait 10), 4 instances,
# PgBouncer and the exporter. Only the major differs: the seed asks for 16.1, Debian 12 ships 15.
# Its Hosts carry the label the seed's hosts.yaml gives them (the seed has no nodeSelector).
SEED=$ROOT/examples/seeds/strict-sync
cp "$SEED/sgcluster.yaml" "$SEED/configs.yaml" "$CLUSTER_DIR/"
sed -i "s/^    version: '16.1'\$/    version: '15'/" "$CLUSTER_DIR/sgcluster.yaml"
sed -i 's/^  postgresVersion: "16"$/  postgresVersion: "15"/' "$CLUSTER_DIR/configs.yaml"
changed=$(diff "$SEED/sgcluster.yaml" "$CLUSTER_DIR/sgcluster.yaml" | grep -c '^[<>]' || true)
[[ $changed -eq 2 ]] || fail "the seed SGCluster differs in more than its version: $(diff "$SEED/sgcluster.yaml" "$CLUSTER_DIR/sgcluster.yaml")"
grep -q 'pgconverge.io' "$CLUSTER_DIR/sgcluster.yaml" && fail "the seed SGCluster carries a pgconverge annotation"
sed -i 's/labels: {pgconverge.io\/lab: "true"}/labels: {pgconverge.io\/lab: "true", pgconverge.io\/cluster: sync-cluster}/' \
  "$LAB_MANIFESTS/hosts.yaml"
[[ $(grep -c 'pgconverge.io/cluster: sync-cluster' "$LAB_MANIFESTS/hosts.yaml") -eq 4 ]] || fail "the lab's Hosts were not labelled"
t0=$SECONDS
expect_exit 0 pgc apply --progress log --wait-timeout 240
took=$((SECONDS - t0))
echo "apply from bare members to converged, through SSH alone: ${took}s"
grep -q "cluster sync-cluster: converged" "$WORK/out" || fail "apply did not report convergence"
((took < 240)) || fail "apply took ${took}s, over its --wait-timeout 240"

step "plan afterwards, under the same restriction: no change"
expect_exit 0 pgc plan
grep -q "No changes" "$WORK/out" || fail "plan after apply is not empty"
roles=$(pgc status sync-cluster -o json | jq -r '[.clusters[0].members[].role] | sort | join(",")')
echo "roles: $roles"
[[ $roles == "Leader,Replica,Sync Standby,Sync Standby" ]] ||
  fail "want a leader, 2 sync standbys (syncInstances 2) and a replica: $roles"
# TLS on the links between hosts (spec.postgres.ssl, on by default; docs/security.md "Links").
host_of() {  # the lab host name (pg-N) at an address
  local i=1 a
  for a in $LAB_HOST_ADDRESSES; do
    [[ $a == "$1" ]] && { echo "pg-$i"; return; }
    i=$((i + 1))
  done
  fail "no lab host has address $1"
}
on_host() { local h=$1; shift; "$LAB" ssh "$h" "$@"; }
local_sql() { on_host "$1" runuser -u postgres -- psql -h /var/run/postgresql -XAtqc "$2"; }
TLS_DIR=/etc/patroni/tls/15-sync-cluster
leader=$(pgc status sync-cluster -o json | jq -r '.clusters[0].members[] | select(.role=="Leader") | .host')
leader_host=$(host_of "$leader")
replica=$(pgc status sync-cluster -o json | jq -r '[.clusters[0].members[] | select(.role!="Leader") | .host][0]')
replica_host=$(host_of "$replica")
echo "leader $leader ($leader_host), a replica $replica ($replica_host)"

step "TLS: every streaming replica is on TLS (pg_stat_ssl)"
counts=$(local_sql "$leader_host" "select count(*), count(*) filter (where s.ssl) from pg_stat_replication r join pg_stat_ssl s using (pid) where r.state = 'streaming'")
echo "streaming replicas, on TLS: $counts"
[[ $counts == "3|3" ]] || fail "want 3 streaming replicas, all on TLS: $counts"

step "TLS: a replication connection without TLS is refused by pg_hba, one with TLS verifying the leader is let in"
repl_password=$(jq -r .replication "$STATE/secrets/failover.sync-cluster.json")
out=$(on_host "$replica_host" env PGPASSWORD="$repl_password" psql "host=$leader user=replicator dbname=replication replication=true sslmode=disable connect_timeout=5" -XAtc IDENTIFY_SYSTEM 2>&1) &&
  fail "a replication connection without TLS was let in: $out"
echo "without TLS: $out"
grep -q "no encryption" <<<"$out" || fail "the refusal is not pg_hba's for a connection without TLS: $out"
out=$(on_host "$replica_host" env PGPASSWORD="$repl_password" psql "host=$leader user=replicator dbname=replication replication=true sslmode=verify-full sslrootcert=$TLS_DIR/ca.crt connect_timeout=5" -XAtc IDENTIFY_SYSTEM 2>&1) ||
  fail "a replication connection with TLS (verify-full against the cluster's CA) failed: $out"
echo "with TLS, the leader's certificate verified: ok"

step "TLS: Patroni's REST API is https only, reads need no client certificate, an unauthenticated PATCH is refused"
code=$(on_host "$replica_host" curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$TLS_DIR/ca.crt" "https://$leader:8008/cluster")
[[ $code == 200 ]] || fail "GET /cluster over https (verifying the member) answered $code"
code=$(on_host "$replica_host" curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$TLS_DIR/ca.crt" -X PATCH -d '{"ttl": 10}' "https://$leader:8008/config")
[[ $code == 401 || $code == 403 ]] || fail "an unauthenticated PATCH /config answered $code, want 401 or 403"
echo "unauthenticated PATCH: $code"
if on_host "$replica_host" curl -s --max-time 5 -o /dev/null "http://$leader:8008/cluster"; then
  fail "Patroni still answers plain http"
fi
echo "plain http: no answer"

step "TLS: a certificate past its renewal threshold is renewed by apply, with a writable primary throughout"
# Certificates issued now by the cluster's CA (the state dir's file holds its key and certificate),
# valid for 2 days: under the 33-day threshold of the default 395-day duration.
ca_file=$STATE/tls/failover.sync-cluster.ca.pem
for h in "$leader_host" "$replica_host"; do
  [[ $h == "$leader_host" ]] && a=$leader || a=$replica
  member=$(pgc status sync-cluster -o json | jq -r --arg a "$a" '.clusters[0].members[] | select(.host==$a) | .name')
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/short.key" -subj "/CN=$member" \
    -addext "subjectAltName=IP:$a,IP:127.0.0.1,DNS:$member,DNS:localhost" -out "$WORK/short.csr" 2>/dev/null || fail "openssl req"
  openssl x509 -req -in "$WORK/short.csr" -CA "$ca_file" -CAkey "$ca_file" -days 2 -copy_extensions copy \
    -out "$WORK/short.crt" 2>/dev/null || fail "openssl x509"
  on_host "$h" tee "$TLS_DIR/server.key" <"$WORK/short.key" >/dev/null
  on_host "$h" tee "$TLS_DIR/server.crt" <"$WORK/short.crt" >/dev/null
  on_host "$h" systemctl reload patroni@15-sync-cluster
done
sleep 3
expect_exit 2 pgc plan
[[ $(grep -c "reason: expires .*: renewed 32 days before" "$WORK/out") -eq 2 ]] ||
  fail "plan does not show the renewal of the two short certificates"
[[ $(grep -c ": $TLS_DIR/server.crt\$" "$WORK/out") -eq 2 ]] || fail "plan renews other certificates than the two short ones"
[[ $(grep -c "no restart" "$WORK/out") -eq 2 ]] || fail "plan does not reload the two renewed members"
# A writer on the leader during the apply: every insert must succeed within 2 s.
local_sql "$leader_host" "create table if not exists tls_writes (at timestamptz)" >/dev/null
on_host "$leader_host" bash -c 'end=$((SECONDS + 40)); fails=0; n=0
  while ((SECONDS < end)) && [[ ! -e /tmp/tls-writer-stop ]]; do
    runuser -u postgres -- psql -h /var/run/postgresql -XAtqc "set statement_timeout = 2000; insert into tls_writes values (now())" >/dev/null 2>&1 || fails=$((fails + 1))
    n=$((n + 1)); sleep 0.1
  done; echo "$n $fails" >/tmp/tls-writer-result' &
writer=$!
sleep 1
expect_exit 0 pgc apply --progress log
on_host "$leader_host" touch /tmp/tls-writer-stop
wait "$writer"
read -r writes failed < <(on_host "$leader_host" cat /tmp/tls-writer-result)
on_host "$leader_host" rm -f /tmp/tls-writer-stop /tmp/tls-writer-result
echo "writes during the renewal: $writes, failed: $failed"
[[ $writes -gt 10 && $failed -eq 0 ]] || fail "writes failed during the renewal ($failed of $writes)"
for h in "$leader_host" "$replica_host"; do
  until_date=$(on_host "$h" openssl x509 -in "$TLS_DIR/server.crt" -noout -enddate | cut -d= -f2)
  (( $(date -d "$until_date" +%s) > $(date +%s) + 300 * 86400 )) || fail "$h's certificate was not renewed (until $until_date)"
done
expect_exit 0 pgc plan
grep -q "No changes" "$WORK/out" || fail "plan after the renewal is not empty"
counts=$(local_sql "$leader_host" "select count(*), count(*) filter (where s.ssl) from pg_stat_replication r join pg_stat_ssl s using (pid) where r.state = 'streaming'")
[[ $counts == "3|3" ]] || fail "after the renewal: want 3 streaming replicas on TLS: $counts"
# Patroni takes up a reload at its next loop (loop_wait 10 here).
for _ in $(seq 1 30); do
  served=$(on_host "$replica_host" bash -c "openssl s_client -connect $leader:8008 -CAfile $TLS_DIR/ca.crt </dev/null 2>/dev/null | openssl x509 -noout -enddate" | cut -d= -f2)
  (( $(date -d "$served" +%s) > $(date +%s) + 300 * 86400 )) && break
  sleep 1
done
(( $(date -d "$served" +%s) > $(date +%s) + 300 * 86400 )) || fail "the REST API still serves the short certificate (until $served)"
echo "renewed; PostgreSQL replicas on TLS, the REST API serves the new certificate (until $served)"

"$LAB" run nft delete table inet pgc_tunnel_test

step "an etcd that pgconverge runs on the hosts, its client port filtered too"
"$LAB" down >/dev/null 2>&1 || true
"$LAB" up 3 --no-etcd
# shellcheck source=/dev/null
source "$PGC_LAB_DIR/lab.env"
first=${LAB_HOST_ADDRESSES%% *}
rm -rf "$CLUSTER_DIR" "$STATE"; mkdir -p "$CLUSTER_DIR"
filter_to_ssh
"$LAB" run bash -c "exec 3<>/dev/tcp/$first/2379" 2>/dev/null && fail "etcd's client port on $first answers"
write_managed_etcd pg-1 pg-2 pg-3
write_cluster ssh-etcd sync 3 1
sed -i '/pgconverge.io\/client-cidrs/d' "$CLUSTER_DIR/cluster.yaml"
expect_exit 0 pgc apply --progress log
grep -q "cluster ssh-etcd: converged" "$WORK/out" || fail "apply did not report convergence"
expect_exit 0 pgc plan
grep -q "No changes" "$WORK/out" || fail "plan after apply is not empty"
"$LAB" run nft delete table inet pgc_tunnel_test
echo "OK"

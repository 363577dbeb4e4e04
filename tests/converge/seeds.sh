#!/usr/bin/env bash
# From bare lab hosts, apply bootstraps each seed cluster (lab variant) and status shows the
# seed pages' Role column; plan afterwards has nothing to do.
source "$(dirname "$0")/lib.sh"

run_seed() {
  local example=$1 hosts=$2 want=$3
  step "seed $example on $hosts bare hosts"
  lab_up "$hosts"
  rm -rf "$CLUSTER_DIR" "$STATE" && mkdir -p "$CLUSTER_DIR"
  cp "$ROOT/examples/lab/$example/"*.yaml "$CLUSTER_DIR/"
  # The examples are for lab 0; this suite may run on another lab (PGC_LAB_ID).
  sed -i "s|client-cidrs: 10.250.0.1/32|client-cidrs: $LAB_CLIENT_ADDRESS/32|" "$CLUSTER_DIR/"*.yaml
  local t0=$SECONDS
  expect_exit 0 pgc apply --progress log
  echo "apply from bare hosts to converged: $((SECONDS - t0))s"
  pgc status
  local got
  got=$(role_counts sync-cluster)
  echo "roles: $got"
  [[ $got == "$want" ]] || fail "$example: roles are '$got', want '$want'"
  expect_exit 0 pgc plan
  grep -q "No changes" "$WORK/out" || fail "plan after apply is not empty"
}

# The seeds' sgPoolingConfig and prometheusAutobind: PgBouncer on 6432 and the exporter on 9187 on
# every member. PgBouncer forwards to its own member's PostgreSQL (as StackGres' sidecar does): on
# the leader a pooled session can write, on a replica it reads.
check_sidecars() {
  local leader addresses a got
  leader=$(leader_address sync-cluster)
  addresses=$(status_json sync-cluster | jq -r '.clusters[0].members[].host')
  # The seeds live in namespace failover (lib.sh's sql reads the default namespace's secrets).
  "$LAB" run env PGPASSWORD="$(jq -r .superuser "$STATE/secrets/failover.sync-cluster.json")" PGCONNECT_TIMEOUT=5 \
    timeout 15 psql -h "$leader" -U postgres -d postgres -XAtqc "CREATE ROLE app LOGIN PASSWORD 'app-pw'" >/dev/null
  for a in $addresses; do
    got=$("$LAB" run env PGPASSWORD=app-pw PGCONNECT_TIMEOUT=5 timeout 15 \
      psql -h "$a" -p 6432 -U app -d postgres -XAtqc "select current_user, pg_is_in_recovery()") ||
      fail "psql through PgBouncer on $a:6432 as app failed"
    if [[ $a == "$leader" ]]; then [[ $got == "app|f" ]] || fail "PgBouncer on the leader $a: '$got', want app|f"
    else [[ $got == "app|t" ]] || fail "PgBouncer on replica $a: '$got', want app|t (its own member)"; fi
    # Not `curl | grep -q`: grep ends at the first match and, with pipefail, curl's failed write fails the check.
    "$LAB" run curl -fsS --max-time 5 "http://$a:9187/metrics" >"$WORK/metrics" && grep -qx 'pg_up 1' "$WORK/metrics" ||
      fail "the exporter on $a:9187 does not report pg_up 1"
  done
  echo "sidecars: PgBouncer answers as app on every member (leader writes, replicas read), exporter pg_up 1"

  step "prometheusAutobind: false stops and disables the exporter"
  sed -i 's/^  prometheusAutobind: true$/  prometheusAutobind: false/' "$CLUSTER_DIR/sgcluster.yaml"
  expect_exit 2 pgc plan  # 2: changes pending
  [[ $(grep -c 'prometheus-postgres-exporter.service' "$WORK/out") -eq 4 ]] || fail "plan does not stop the exporter on 4 members"
  grep -q "userlist.txt\|pgbouncer.service" "$WORK/out" && fail "plan touches PgBouncer"
  expect_exit 0 pgc apply
  for a in $addresses; do
    "$LAB" run curl -fsS --max-time 5 "http://$a:9187/metrics" >/dev/null 2>&1 && fail "the exporter on $a still answers"
  done
  expect_exit 0 pgc plan
  grep -q "No changes" "$WORK/out" || fail "plan after stopping the exporter is not empty"
  echo "sidecars: the exporter is stopped on every member; plan is empty"

  step "a changed pool setting reloads PgBouncer (same process)"
  local pid
  pid=$("$LAB" ssh pg-1 systemctl show -p MainPID --value pgbouncer)
  sed -i "s/default_pool_size: '80'/default_pool_size: '90'/" "$CLUSTER_DIR/configs.yaml"
  expect_exit 2 pgc plan
  [[ $(grep -c 'pgbouncer.default_pool_size: 80 → 90' "$WORK/out") -eq 4 ]] || fail "plan does not show the pool size on 4 members"
  expect_exit 0 pgc apply
  [[ $("$LAB" ssh pg-1 systemctl show -p MainPID --value pgbouncer) == "$pid" ]] || fail "PgBouncer on pg-1 was restarted, not reloaded"
  "$LAB" ssh pg-1 grep -q 'default_pool_size = 90' /etc/pgbouncer/pgbouncer.ini || fail "pgbouncer.ini on pg-1 not rewritten"
  "$LAB" ssh pg-1 grep -qi 'sighup' /var/log/pgclab/pgbouncer.service.log || fail "PgBouncer on pg-1 logged no SIGHUP"
  expect_exit 0 pgc plan
  grep -q "No changes" "$WORK/out" || fail "plan after the reload is not empty"
  echo "sidecars: PgBouncer reloaded in place (pid $pid); plan is empty"
}

run_seed strict-sync 4 "Leader:1 Replica:1 Sync Standby:2"
t0=$SECONDS
check_sidecars
echo "sidecar checks: $((SECONDS - t0))s"
run_seed sync-all 4 "Leader:1 Sync Standby:3"
run_seed strict-sync-all 6 "Leader:1 Sync Standby:5"
echo PASS

#!/usr/bin/env bash
# Secrets (security issue, classes 3, 8, 9) on a 2-member lab cluster with PgBouncer:
#  - PgBouncer's auth_user is no superuser; clients authenticate through the SECURITY DEFINER
#    lookup; the lookup answers for no superuser; a pool entry naming pgconverge's roles is refused.
#  - the state dir lost while the hosts do not answer: no secrets generated or written; hosts back:
#    `secrets recover` reads back the very same ones (and a plain apply would too).
#  - `secrets rotate`: a planned rotate-secrets step first; the roles change on the leader before
#    the configs; the replica keeps streaming and reconnects with the new password; PgBouncer still
#    authenticates; no secret in any output.
source "$(dirname "$0")/lib.sh"
PGC_SSH_CONNECT_TIMEOUT=3
lab_up 2

# ee CODE COMMAND...: expect_exit, keeping every output for the final check that no secret shows.
ee() { local rc=0; expect_exit "$@" || rc=$?; cat "$WORK/out" "$WORK/err" >>"$WORK/all"; return $rc; }
# wait_healthy: a leader and a streaming replica, as pgconverge status shows them.
wait_healthy() {
  for _ in $(seq 1 90); do [[ $(role_counts sec 2>/dev/null) == "Leader:1 Replica:1" ]] && return 0; sleep 1; done
  fail "cluster sec did not come back to a leader and a replica"
}

# pgc_secrets recover|rotate ARGS...: `pgconverge secrets SUB` with the lab's sources and state dir.
pgc_secrets() {
  local sub=$1; shift
  if [[ $sub == recover ]]; then
    "$LAB" run "$PGC" secrets recover -s "$LAB_MANIFESTS" -s "$CLUSTER_DIR" --ssh-identity "$LAB_SSH_KEY" \
      --known-hosts "$LAB_KNOWN_HOSTS" --state-dir "$STATE" --ssh-connect-timeout 3 "$@"
  else
    "$LAB" run "$PGC" secrets "$sub" -s "$LAB_MANIFESTS" -s "$CLUSTER_DIR" --state-dir "$STATE" "$@"
  fi
}

write_cluster sec async 2
sed -i 's|^    sgPostgresConfig: pgconfig1$|    sgPostgresConfig: pgconfig1\n    sgPoolingConfig: pool|' "$CLUSTER_DIR/cluster.yaml"
write_pool() { # [EXTRA DATABASES LINE]
  cat >"$CLUSTER_DIR/pool.yaml" <<YAML
apiVersion: stackgres.io/v1
kind: SGPoolingConfig
metadata: {name: pool}
spec:
  pgBouncer:
    pgbouncer.ini:
      pgbouncer: {pool_mode: session}
      databases:
        appdb: dbname=postgres${1:+
        $1}
YAML
}
write_pool

step "bootstrap with PgBouncer"
ee 0 pgc apply --progress log >/dev/null
cp "$STATE/secrets/default.sec.json" "$WORK/secrets-before.json"
leader=$(leader_address sec)
replica=$(status_json sec | jq -r '.clusters[0].members[] | select(.role != "Leader") | .host')
[[ $(sql sec "$leader" "select rolsuper from pg_roles where rolname = 'authenticator'") == f ]] ||
  fail "authenticator is a superuser"
sql sec "$leader" "CREATE ROLE app LOGIN PASSWORD 'app-pw'" >/dev/null
pool_as() { # ADDRESS ROLE PASSWORD
  "$LAB" run env PGPASSWORD="$3" PGCONNECT_TIMEOUT=5 timeout 15 \
    psql -h "$1" -p 6432 -U "$2" -d appdb -XAtqc "select current_user" 2>&1
}
for a in $leader $replica; do
  [[ $(pool_as "$a" app app-pw) == app ]] || fail "PgBouncer on $a does not let app in through the lookup"
done
got=$(pool_as "$leader" postgres "$(secret sec superuser)") && fail "PgBouncer let the superuser in: $got"
echo "ok: authenticator NOSUPERUSER; app through PgBouncer on both members; the superuser is not looked up ($got)"
# The lookup is there for the auth user only, in every database (template1 for new ones).
[[ $(sql sec "$leader" "select has_function_privilege('app', 'pgconverge.pgbouncer_lookup(text)', 'EXECUTE')") == f ]] ||
  fail "app may run the lookup"
sql sec "$leader" "CREATE DATABASE later" >/dev/null
[[ $("$LAB" run env PGPASSWORD=app-pw PGCONNECT_TIMEOUT=5 timeout 15 \
  psql -h "$leader" -p 6432 -U app -d later -XAtqc "select current_database()") == later ]] ||
  fail "a database created later (from template1) is not reachable through PgBouncer"

step "a pool entry naming pgconverge's own role is refused at validation, nothing applied"
write_pool "admin: dbname=postgres user=authenticator"
ee 1 pgc plan
grep -q "pool.yaml:10:9: spec.pgBouncer.pgbouncer.ini.databases.admin: option user is refused" "$WORK/err" ||
  fail "no file:line:col diagnostic for the forced pool user"
ee 1 pgc apply
"$LAB" exec pg-1 grep -q "^admin = " /etc/pgbouncer/pgbouncer.ini && fail "the refused entry reached pgbouncer.ini"
write_pool
echo "ok: refused with file:line:col, pgbouncer.ini untouched"

step "state dir lost while no host answers: nothing generated, nothing written"
rm -rf "$STATE/secrets"
"$LAB" cut pg-1
"$LAB" cut pg-2
ee 1 pgc apply --wait-timeout 10
grep -q "cluster sec: no secrets in .* and not every host answered" "$WORK/out" "$WORK/err" ||
  fail "apply does not say why it generated no secrets"
grep -q "pgconverge secrets recover sec" "$WORK/out" "$WORK/err" || fail "the refusal does not say how to recover"
[[ ! -e $STATE/secrets/default.sec.json ]] || fail "secrets were written while no host answered"
"$LAB" restore pg-1
"$LAB" restore pg-2
ee 0 pgc_secrets recover sec
cmp -s <(jq -S . "$STATE/secrets/default.sec.json") <(jq -S . "$WORK/secrets-before.json") ||
  fail "recovered secrets differ from the ones the cluster was made with"
ee 1 pgc_secrets recover sec  # already there: refused
wait_healthy
ee 0 pgc plan
grep -q "No changes" "$WORK/out" || fail "plan after recovery is not empty"
leader=$(leader_address sec)
replica=$(status_json sec | jq -r '.clusters[0].members[] | select(.role != "Leader") | .host')
echo "ok: refused while cut, recovered the same secrets once the hosts answered; plan empty"

step "rotation: planned, roles on the leader first, replicas keep streaming"
ee 0 pgc_secrets rotate sec superuser replication pgbouncer
ee 2 pgc plan
grep -q "cluster sec: secrets superuser, replication, pgbouncer" "$WORK/out" || fail "plan shows no rotation step"
ee 0 pgc apply --progress log
new_super=$(secret sec superuser)
[[ $new_super != $(jq -r .superuser "$WORK/secrets-before.json") ]] || fail "superuser password not rotated"
[[ $(secret sec restapi) == $(jq -r .restapi "$WORK/secrets-before.json") ]] || fail "restapi rotated though not asked"
[[ ! -e $STATE/secrets/default.sec.rotate.json ]] || fail "the rotation file is left after apply"
"$LAB" run env PGPASSWORD="$(jq -r .superuser "$WORK/secrets-before.json")" PGCONNECT_TIMEOUT=5 timeout 10 \
  psql -h "$leader" -U postgres -d postgres -XAtqc "select 1" >/dev/null 2>&1 && fail "the old superuser password still works"
# The replica reconnects with the new replication password: cut its stream, it comes back.
sql sec "$leader" "select pg_terminate_backend(pid) from pg_stat_replication" >/dev/null
for _ in $(seq 1 60); do
  [[ $(sql sec "$leader" "select count(*) from pg_stat_replication where state = 'streaming'") == 1 ]] && break
  sleep 0.5
done
[[ $(sql sec "$leader" "select count(*) from pg_stat_replication where state = 'streaming'") == 1 ]] ||
  fail "the replica does not stream again with the new replication password"
for a in $leader $replica; do
  [[ $(pool_as "$a" app app-pw) == app ]] || fail "PgBouncer on $a does not authenticate after the rotation"
done
ee 0 pgc plan
grep -q "No changes" "$WORK/out" || fail "plan after the rotation is not empty"
echo "ok: rotated superuser, replication, pgbouncer; replica streams again; PgBouncer authenticates; plan empty"

step "the superuser's password changed by hand: apply ends at once (waiting cannot fix it), naming member and host"
# A refusal that waiting cannot fix ends the wait at its first answer (docs/reliability.md):
# a mode change's verification must not poll a wrong password until --wait-timeout.
leader=$(leader_address sec)
sql sec "$leader" "ALTER ROLE postgres PASSWORD 'changed-by-hand'" >/dev/null
sed -i 's/^    mode: async$/    mode: sync/' "$CLUSTER_DIR/cluster.yaml"
grep -q '^    mode: sync$' "$CLUSTER_DIR/cluster.yaml" || fail "the cluster's mode was not changed"
t0=$SECONDS
ee 1 pgc apply --progress log --wait-timeout 120
took=$((SECONDS - t0))
echo "apply ended after ${took}s"
grep -q 'password authentication failed for user "postgres"' "$WORK/out" "$WORK/err" ||
  fail "apply does not say PostgreSQL refused the password"
grep -q "not retried" "$WORK/out" "$WORK/err" || fail "apply does not say the refusal is not retried"
grep -qE "sec-[01].*host pg-[12]|host pg-[12].*sec-[01]" "$WORK/out" "$WORK/err" || fail "apply does not name the member and its host"
((took < 40)) || fail "apply took ${took}s: it waited on a refusal that waiting cannot fix (--wait-timeout 120)"
# Put the password back as the state dir has it (over the host's socket: nothing printed).
for h in pg-1 pg-2; do
  "$LAB" ssh "$h" "runuser -u postgres -- psql -h /var/run/postgresql -XAtqc 'select pg_is_in_recovery()'" 2>/dev/null | grep -qx f || continue
  printf "ALTER ROLE postgres PASSWORD '%s';\n" "$(secret sec superuser)" |
    "$LAB" ssh "$h" "runuser -u postgres -- psql -h /var/run/postgresql -XAtq" >/dev/null
done
ee 0 pgc apply --progress log
ee 0 pgc plan
grep -q "No changes" "$WORK/out" || fail "plan after the password was put back is not empty"
echo "ok: ended after ${took}s with the member and host named; converged once the password was put back"

step "no secret, old or new, in any output"
for s in $(jq -r '.[]' "$WORK/secrets-before.json" "$STATE/secrets/default.sec.json" | sort -u); do
  if grep -lF -- "$s" "$WORK/all" "$STATE/history.json"; then fail "a secret was printed"; fi
done
echo "ok"

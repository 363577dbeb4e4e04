#!/usr/bin/env bash
# From truly bare hosts (a debootstrap'd Debian 12 minbase with sshd, and the lab's apt repository
# as the only package source: tests/lab/README.md "Bare mode") to a healthy strict-sync cluster
# with PgBouncer and the metrics exporter, on a 3-member etcd pgconverge installs and forms on the
# same hosts, nothing installed by hand. First a host whose install apt refuses: reported in apt's own words,
# and no host is changed; then the real run, timed; then a second apply changes nothing.
source "$(dirname "$0")/lib.sh"
"$LAB" down >/dev/null 2>&1 || true
"$LAB" up 3 --bare --no-etcd
# shellcheck source=/dev/null
source "$PGC_LAB_DIR/lab.env"
[[ ${LAB_BARE:-0} == 1 ]] || fail "the lab is not bare"
for h in pg-1 pg-2 pg-3; do
  "$LAB" ssh "$h" '! command -v patroni && ! test -e /usr/lib/postgresql' >/dev/null || fail "$h is not bare"
done

write_managed_etcd pg-1 pg-2 pg-3
write_cluster bare strict-sync 3 1
# As the seeds declare: PgBouncer (sgPoolingConfig) and the metrics exporter (prometheusAutobind).
sed -i 's/^    sgPostgresConfig: pgconfig1$/    sgPostgresConfig: pgconfig1\n    sgPoolingConfig: pool/;
        s/^  instances: 3$/  instances: 3\n  prometheusAutobind: true/' "$CLUSTER_DIR/cluster.yaml"
cat >>"$CLUSTER_DIR/cluster.yaml" <<'YAML'
---
apiVersion: stackgres.io/v1
kind: SGPoolingConfig
metadata: {name: pool}
spec:
  pgBouncer:
    pgbouncer.ini:
      pgbouncer: {pool_mode: transaction, default_pool_size: '20'}
YAML

step "plan on bare hosts lists every package, file, service and bootstrap step"
expect_exit 2 pgc plan
for h in pg-1 pg-2 pg-3; do
  grep -q "host $h: packages" "$WORK/out" || fail "plan does not list the packages of $h"
done
grep -q "apt-get update first: apt has no package lists" "$WORK/out" || fail "plan does not say apt-get update comes first"
for p in patroni postgresql-15 postgresql-client-15 python3-etcd pgbouncer prometheus-postgres-exporter etcd-server; do
  grep "host pg-1: packages" -A1 "$WORK/out" | grep -q "$p" || fail "plan does not name package $p"
done
grep -q "/etc/pgbouncer/pgbouncer.ini" "$WORK/out" || fail "plan does not list PgBouncer's configuration"
grep -q "prometheus-postgres-exporter" "$WORK/out" || fail "plan does not list the exporter"
grep -q "member bare-0 (pg-1): /etc/patroni/15-bare.yml" "$WORK/out" || fail "plan does not list the config files"
grep -q "(new: bootstrap)" "$WORK/out" || fail "plan does not show the bootstrap"
grep -q "etcd dcs: members pg-1, pg-2, pg-3" "$WORK/out" || fail "plan does not show the etcd being formed"

step "pg-3's apt refuses postgresql-15 (pinned away): apt's own message, and no host changed"
"$LAB" ssh pg-3 'printf "Package: postgresql-15\nPin: version *\nPin-Priority: -1\n" >/etc/apt/preferences.d/no-postgresql'
expect_exit 1 pgc apply --progress log
grep -q "host pg-3 ([0-9.]*): apt-get install .*E: Package 'postgresql-15' has no installation candidate" "$WORK/out" "$WORK/err" ||
  fail "pg-3's failure is not reported with apt's message"
for h in pg-1 pg-2 pg-3; do
  "$LAB" ssh "$h" '! dpkg-query -W -f="\${Status}" postgresql-15 2>/dev/null | grep -q "ok installed" && test ! -e /etc/patroni' ||
    fail "$h was changed although the cluster could not be prepared"
done
"$LAB" ssh pg-3 rm /etc/apt/preferences.d/no-postgresql

step "bare hosts → a healthy strict-sync cluster"
t0=$SECONDS
expect_exit 0 pgc apply --progress log
echo "bare hosts to converged, package installation included: $((SECONDS - t0))s"
counts=$(role_counts bare)
echo "roles: $counts"
[[ $counts == "Leader:1 Replica:1 Sync Standby:1" ]] || fail "roles are '$counts'"
check_replication bare 1
pgc status
managed_etcdctl endpoint health 2>&1 | tee "$WORK/health"
[[ $(grep -c 'is healthy' "$WORK/health") -eq 3 ]] || fail "not every etcd member is healthy"

step "PgBouncer and the exporter run on every member"
leader=$(leader_address bare)
sql bare "$leader" "CREATE ROLE app LOGIN PASSWORD 'app-pw'" >/dev/null
for a in $LAB_HOST_ADDRESSES; do
  got=$("$LAB" run env PGPASSWORD=app-pw PGCONNECT_TIMEOUT=5 timeout 15 \
    psql -h "$a" -p 6432 -U app -d postgres -XAtqc "select current_user") || fail "PgBouncer on $a:6432 does not answer"
  [[ $got == app ]] || fail "PgBouncer on $a answered '$got'"
  metrics=$("$LAB" run curl -fsS --max-time 5 "http://$a:9187/metrics") || fail "the exporter on $a:9187 does not answer"
  grep -qx 'pg_up 1' <<<"$metrics" || fail "no pg_up 1 from the exporter on $a"
done
echo "ok: PgBouncer (6432) and the exporter (9187, pg_up 1) on every member"

step "a second apply changes nothing"
expect_exit 0 pgc apply
grep -q "No changes" "$WORK/out" || fail "the second apply made changes"
echo PASS

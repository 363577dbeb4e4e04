#!/usr/bin/env bash
# Host preparation against real hosts: a PostgreSQL major no package source has, and an
# unsupported OS, are refused at plan time naming host, package / OS and the fix, with nothing
# applied; Debian's own 15/main, running on the port a member needs, is stopped and disabled
# with its data kept, and the cluster then converges on that host.
source "$(dirname "$0")/lib.sh"
lab_up 2

step "pg-1 has Debian's own cluster 15/main running on 5432, with data in it"
"$LAB" ssh pg-1 'pg_createcluster 15 main --start >/dev/null &&
  runuser -u postgres -- psql -p 5432 -XAtqc "create table kept(x int); insert into kept values (42)" >/dev/null'
"$LAB" ssh pg-1 'pg_lsclusters --no-header' | tee "$WORK/lsclusters"
grep -q '^15 *main *5432 *online' "$WORK/lsclusters" || fail "Debian's 15/main did not start"

step "postgres.version 16: not in Debian 12's own repositories → refused at plan time, nothing applied"
write_cluster prep async 2
sed -i 's/version: "15"/version: "16"/; s/postgresVersion: "15"/postgresVersion: "16"/' "$CLUSTER_DIR/cluster.yaml"
expect_exit 1 pgc plan
for h in pg-1 pg-2; do
  grep -q "host $h: packages postgresql-16 (apt does not know it), postgresql-client-16 (apt does not know it) are not available from its package sources" "$WORK/out" "$WORK/err" ||
    fail "no clear error for postgresql-16 on $h"
done
grep -q 'packageRepositories: \[pgdg\]' "$WORK/out" "$WORK/err" || fail "the error does not name the fix"
expect_exit 1 pgc apply
for h in pg-1 pg-2; do
  "$LAB" ssh "$h" 'test ! -e /etc/patroni/16-prep.yml && ! dpkg-query -W postgresql-16 >/dev/null 2>&1' ||
    fail "something was applied to $h"
done
"$LAB" ssh pg-1 'pg_lsclusters --no-header' | grep -q '^15 *main *5432 *online' ||
  fail "Debian's cluster was touched although nothing was to be applied"

step "pg-2 claims to be Rocky Linux: refused as unsupported, nothing applied to the cluster"
write_cluster prep async 2
"$LAB" ssh pg-2 'rm /etc/os-release && printf "%s\n" "NAME=\"Rocky Linux\"" "ID=\"rocky\"" "ID_LIKE=\"rhel centos fedora\"" \
  "VERSION_ID=\"9.3\"" "PRETTY_NAME=\"Rocky Linux 9.3 (Blue Onyx)\"" >/etc/os-release'
expect_exit 1 pgc plan
grep -q 'host pg-2: unsupported OS Rocky Linux 9.3 (Blue Onyx) (ID=rocky): RHEL-family hosts (dnf' "$WORK/out" "$WORK/err" ||
  fail "no clear unsupported-OS error"
grep -q "Debian's cluster 15/main" "$WORK/out" && fail "a blocked cluster still plans host changes for it"
"$LAB" ssh pg-2 'rm /etc/os-release && ln -s ../usr/lib/os-release /etc/os-release'

step "the real cluster: Debian's 15/main is stopped and disabled first, then Patroni takes port 5432"
expect_exit 2 pgc plan  # 2: there are changes
grep -q "host pg-1: Debian's cluster 15/main" "$WORK/out" || fail "plan does not show Debian's cluster being stopped"
grep -q "data kept in /var/lib/postgresql/15/main" "$WORK/out" || fail "plan does not say the data is kept"
expect_exit 0 pgc apply --progress log
"$LAB" ssh pg-1 'pg_lsclusters --no-header' | tee "$WORK/lsclusters"
grep -q '^15 *main *5432 *down' "$WORK/lsclusters" || fail "Debian's 15/main still runs"
"$LAB" ssh pg-1 'grep -qx disabled /etc/postgresql/15/main/start.conf' || fail "start.conf is not disabled"
"$LAB" ssh pg-1 'test -s /var/lib/postgresql/15/main/PG_VERSION && test -d /var/lib/postgresql/15/main/base' ||
  fail "Debian's data directory is gone"
counts=$(role_counts prep)
echo "roles: $counts"
[[ $counts == "Leader:1 Replica:1" ]] || fail "cluster did not converge: $counts"

step "Debian's data is intact: start it on another port and read it back"
"$LAB" ssh pg-1 'runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D /var/lib/postgresql/15/main -w -s \
  -o "-c config_file=/etc/postgresql/15/main/postgresql.conf -p 5499" start >/dev/null &&
  runuser -u postgres -- psql -p 5499 -XAtqc "select x from kept"; rc=$?;
  runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D /var/lib/postgresql/15/main -w -s -m fast stop; exit $rc' \
  | tee "$WORK/kept"
grep -qx 42 "$WORK/kept" || fail "the row in Debian's cluster is gone"

step "a second plan changes nothing"
expect_exit 0 pgc plan
grep -q "No changes" "$WORK/out" || fail "second plan is not empty"
echo PASS

#!/usr/bin/env bash
# Faults (reliability issue, items 4–7) on one strict-sync cluster of 3 real members:
#  4. the leader's Patroni stopped during an apply that changes the replication mode (before the
#     PATCH, and while verifying after it): the same apply re-observes, reaches the new leader,
#     starts the old one again and converges.
#  5. etcd down: plan names the DCS and exits 1; apply changes nothing (no file, no reload); once
#     etcd is back the next apply converges.
#  6. a pending restart while another member is down: no restart that would leave the strict
#     cluster without a sync standby (held back, explained); writes keep working; once the member
#     is back, the next apply restarts everything.
#  7. scale down that would stop the last streaming replica of a strict cluster: held back with
#     the reason, shown by plan --allow-write-outage; done once the lost member is back, with its
#     data directory kept.
# PGC_FAULTS_HA_PART selects the faults: "live" (4, 5), "held" (6, 7) or "all" (default); CTest
# runs the two parts on two labs at once (converge_faults_ha, converge_faults_held).
source "$(dirname "$0")/lib.sh"
part=${PGC_FAULTS_HA_PART:-all}
case $part in all|live|held) ;; *) fail "PGC_FAULTS_HA_PART must be all, live or held (got $part)" ;; esac
runs() { [[ $part == all || $part == "$1" ]]; }
PGC_SSH_CONNECT_TIMEOUT=3  # hosts are cut here: do not wait the default 10 s each time
lab_up 3

conf=/etc/patroni/15-ha.yml
host_of() {  # host_of MEMBER → pg-N
  local ip
  ip=$(status_json ha | jq -r --arg m "$1" '.clusters[0].members[] | select(.name == $m) | .host')
  [[ -n $ip ]] || fail "member $1 is not in status"
  echo "pg-$(( ${ip##*.} - 10 ))"
}
leader_name() { status_json ha | jq -r '.clusters[0].members[] | select(.role == "Leader") | .name'; }
postmaster_started() { sql ha "$1" "select pg_postmaster_start_time()"; }
member_ip() { status_json ha | jq -r --arg m "$1" '.clusters[0].members[] | select(.name == $m) | .host'; }
expect_roles() {
  local roles
  roles=$(role_counts ha)
  [[ $roles == "$1" ]] || fail "roles: $roles, expected $1"
}

write_cluster ha strict-sync 3 1
expect_exit 0 pgc apply --progress log >/dev/null
expect_roles "Leader:1 Replica:1 Sync Standby:1"
sql ha "$(leader_address ha)" "create table t(i int)"

# stop_leader_when PATTERN: once the running apply's log matches PATTERN, stop the leader's Patroni.
stop_leader_when() {
  local pattern=$1 old host
  old=$(leader_name)
  host=$(host_of "$old")
  echo "$old" >"$WORK/old_leader"
  : >"$WORK/apply.out"; : >"$WORK/apply.err"  # before the background apply: never match the previous run's log
  pgc apply --progress log >"$WORK/apply.out" 2>"$WORK/apply.err" &
  local pid=$! waited=0
  until grep -qE "$pattern" "$WORK/apply.err" "$WORK/apply.out" 2>/dev/null; do
    sleep 0.1
    (( ++waited < 600 )) || { kill "$pid"; fail "apply never logged /$pattern/"; }
  done
  "$LAB" exec "$host" systemctl stop patroni@15-ha
  echo "stopped $old's Patroni on $host once the apply logged /$pattern/"
  local rc=0
  wait "$pid" || rc=$?
  cat "$WORK/apply.out"; cat "$WORK/apply.err" >&2
  [[ $rc -eq 0 ]] || fail "apply with the leader stopped under it exited $rc, expected 0 (converged)"
}

if runs live; then
step "fault 4a: strict-sync → sync-all, the leader's Patroni stopped as the apply starts"
write_cluster ha sync-all 3
t0=$SECONDS
stop_leader_when "^cluster default/ha|Plan: "
old=$(cat "$WORK/old_leader")
[[ $(leader_name) != "$old" ]] || fail "$old still leads after its Patroni was stopped"
expect_roles "Leader:1 Sync Standby:2"
check_replication ha 2
echo "ok: converged in the same apply, $((SECONDS - t0))s; $old is back as a sync standby, $(leader_name) leads"

step "fault 4b: sync-all → strict-sync, the leader's Patroni stopped right after the PATCH"
write_cluster ha strict-sync 3 1
t0=$SECONDS
stop_leader_when 'step="patch-dcs ha".*result=ok'
grep -q "observing again, pass 2" "$WORK/apply.out" || fail "the apply did not re-observe after losing the leader"
expect_roles "Leader:1 Replica:1 Sync Standby:1"
check_replication ha 1
echo "ok: re-observed and converged in the same apply, $((SECONDS - t0))s"

step "fault 5: etcd down — plan names the DCS and exits 1, apply changes nothing"
write_cluster ha strict-sync 3 1 ha   # a pending change: role ha (noloadbalance) on every member
"$LAB" etcd stop
t0=$SECONDS
expect_exit 1 pgc plan >/dev/null
grep -q "DCS etcd \"dcs\" ($LAB_ETCD) unreachable" "$WORK/out" ||
  fail "plan does not say that the DCS is unreachable"
grep -q "nothing is applied to this cluster until it answers" "$WORK/out" || fail "plan does not say nothing is applied"
echo "ok: plan exit 1 after $((SECONDS - t0))s, naming the DCS"
expect_exit 1 pgc apply --progress log --wait-timeout 20 >/dev/null
for h in pg-1 pg-2 pg-3; do
  [[ $("$LAB" exec "$h" sh -c "grep -c 'noloadbalance: true' $conf || true") == 0 ]] ||
    fail "apply changed $conf on $h while etcd was down"
done
"$PGC" history --state-dir "$STATE" -o json | jq -e '.runs[-1].result == "failure" and .runs[-1].changesApplied == 0' \
  >/dev/null || fail "the run with etcd down is not a failure with 0 changes applied"
echo "ok: apply exit 1, no file written, no reload"
"$LAB" etcd start
t0=$SECONDS
until pgc status ha -o json >/dev/null 2>&1 && [[ -n $(leader_address ha) ]]; do
  (( SECONDS - t0 < 60 )) || fail "the cluster has no leader 60s after etcd came back"
  sleep 1
done
expect_exit 0 pgc apply --progress log >/dev/null
for h in pg-1 pg-2 pg-3; do
  [[ $("$LAB" exec "$h" sh -c "grep -c 'noloadbalance: true' $conf || true") == 1 ]] || fail "$h did not get role ha"
done
echo "ok: etcd back, the next apply converged $((SECONDS - t0))s later"

fi  # live

if runs held; then
step "fault 6: a pending restart while a replica is down — no restart that leaves strict without a sync standby"
leader=$(leader_name)
down=$(status_json ha | jq -r '[.clusters[0].members[] | select(.role != "Leader") | .name][0]')
other=$(status_json ha | jq -r --arg d "$down" '[.clusters[0].members[] | select(.role != "Leader" and .name != $d) | .name][0]')
down_host=$(host_of "$down")
leader_ip=$(member_ip "$leader"); other_ip=$(member_ip "$other")
before_leader=$(postmaster_started "$leader_ip"); before_other=$(postmaster_started "$other_ip")
"$LAB" cut "$down_host"
echo "cut $down ($down_host); $leader leads, $other is the only replica left"
sed -i 's/max_connections: "100"/max_connections: "120"/' "$CLUSTER_DIR/cluster.yaml"
expect_exit 1 pgc apply --progress log --wait-timeout 20 >/dev/null   # PATCHes the DCS; $down_host fails
t0=$SECONDS
until [[ $(status_json ha | jq '[.clusters[0].members[] | select(.pendingRestart)] | length') == 2 ]]; do
  (( SECONDS - t0 < 30 )) || fail "Patroni does not report the pending restarts"
  sleep 1
done
expect_exit 1 pgc apply --progress log --wait-timeout 20 >/dev/null
grep -q "restart of $other held back: while $other is down, strict cluster ha has no other streaming replica" "$WORK/out" ||
  fail "apply does not explain why $other is not restarted"
grep -q "restart of leader $leader (after a switchover to $other) held back" "$WORK/out" ||
  fail "apply does not explain why the leader is not restarted"
[[ $(postmaster_started "$leader_ip") == "$before_leader" && $(postmaster_started "$other_ip") == "$before_other" ]] ||
  fail "a member was restarted while $down was down"
[[ $(leader_name) == "$leader" ]] || fail "leadership moved while $down was down"
sql ha "$leader_ip" "insert into t values (6)" 10 || fail "a write did not complete with $down down"
echo "ok: nothing restarted, $leader still leads and takes writes"
"$LAB" restore "$down_host"
t0=$SECONDS
expect_exit 0 pgc apply --progress log >/dev/null
[[ $(status_json ha | jq '[.clusters[0].members[] | select(.pendingRestart)] | length') == 0 ]] ||
  fail "pending restarts left after $down came back"
[[ $(sql ha "$(leader_address ha)" "show max_connections") == 120 ]] || fail "max_connections is not 120"
echo "ok: $down back; restarted (replicas, switchover, old leader) and converged in $((SECONDS - t0))s"

step "fault 7: strict scale down 3 → 2 while a member is down — the last streaming replica is not stopped"
leader=$(leader_name)
if [[ $leader == ha-1 ]]; then down=ha-0; else down=ha-1; fi
down_host=$(host_of "$down"); removed_host=$(host_of ha-2)
"$LAB" cut "$down_host"
echo "cut $down ($down_host); $leader leads; ha-2 ($removed_host) is no longer declared"
write_cluster ha strict-sync 2 1 ha
sed -i 's/max_connections: "100"/max_connections: "120"/' "$CLUSTER_DIR/cluster.yaml"
expect_exit 1 pgc apply --progress log --wait-timeout 20 >/dev/null
grep -q "stop of ha-2 (no longer declared) held back" "$WORK/out" || fail "apply does not explain why ha-2 is kept"
grep -q -- "--allow-write-outage" "$WORK/out" || fail "the message does not name the override"
"$LAB" exec "$removed_host" systemctl is-active patroni@15-ha >/dev/null || fail "ha-2 was stopped"
sql ha "$(leader_address ha)" "insert into t values (7)" 10 || fail "a write did not complete"
expect_exit 1 pgc plan --allow-write-outage >/dev/null
grep -q "member ha-2 ($removed_host): patroni@15-ha" "$WORK/out" || fail "plan --allow-write-outage does not plan the stop"
echo "ok: held back and explained; the override would plan it"
"$LAB" restore "$down_host"
t0=$SECONDS
expect_exit 0 pgc apply --progress log >/dev/null
expect_roles "Leader:1 Sync Standby:1"
! "$LAB" exec "$removed_host" systemctl is-active patroni@15-ha >/dev/null || fail "ha-2 still runs"
"$LAB" exec "$removed_host" test -s /var/lib/postgresql/15/ha/PG_VERSION || fail "ha-2's data directory is gone"
expect_exit 0 pgc plan >/dev/null
echo "ok: $down back; ha-2 stopped (data directory kept), converged in $((SECONDS - t0))s"
fi  # held
echo PASS

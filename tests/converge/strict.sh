#!/usr/bin/env bash
# Strict mode really blocks writes with every replica stopped (client-side timeout), and
# non-strict sync does not.
source "$(dirname "$0")/lib.sh"
lab_up 3

write_cluster guard strict-sync 3 1
expect_exit 0 pgc apply --progress log
leader=$(leader_address guard)
sql guard "$leader" "create table t(i int)"

stop_replicas() {
  for h in $(status_json guard | jq -r '.clusters[0].members[] | select(.role!="Leader") | .host'); do
    name=pg-$(( ${h##*.} - 10 ))
    "$LAB" ssh "$name" systemctl stop patroni@15-guard
  done
  sleep 3
}
start_replicas() {
  for n in 1 2 3; do "$LAB" ssh "pg-$n" systemctl start patroni@15-guard; done
}

step "strict-sync: stop every replica, a write must block"
stop_replicas
rc=0
sql guard "$leader" "insert into t values (1)" 8 || rc=$?
[[ $rc -eq 124 ]] || fail "write with no replica in strict mode returned $rc, expected to block (timeout 124)"
echo "write blocked as expected"

step "heal with apply (starts the replicas), then sync (non-strict)"
write_cluster guard sync 3 1
expect_exit 0 pgc apply --progress log
leader=$(leader_address guard)
step "sync: stop every replica, a write must complete (after at most one HA loop)"
stop_replicas
t0=$SECONDS
if ! sql guard "$leader" "insert into t values (2)" 40; then
  echo "--- synchronous_standby_names: $(sql guard "$leader" "show synchronous_standby_names" 5 || true)"
  echo "--- waiting backends: $(sql guard "$leader" "select pid, wait_event, left(query, 60) from pg_stat_activity where wait_event = 'SyncRep'" 5 || true)"
  "$LAB" run curl -s --max-time 3 "http://$leader:8008/config" || true
  "$LAB" ssh pg-1 'tail -n 40 /var/log/pgclab/patroni@15-guard.service.log' 2>/dev/null || true
  fail "write in non-strict sync mode did not complete"
fi
echo "write completed in $((SECONDS - t0))s"
start_replicas
expect_exit 0 pgc apply --progress log
echo PASS

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
# sync_settled CLUSTER LEADER: the leader's synchronous_standby_names names exactly the members
# Patroni's /sync key holds (the sync_standby roles of GET /cluster).
sync_settled() {
  local names syncs
  names=$(sql "$1" "$2" "show synchronous_standby_names" 5) || return 1
  names=$(sed -E 's/^[0-9]+ *\((.*)\)$/\1/; s/"//g; s/ //g' <<<"$names" | tr ',' '\n' | grep -v '^$' | sort | paste -sd,)
  syncs=$(patroni_curl "$2" /cluster --max-time 3 |
    jq -r '[.members[] | select(.role=="sync_standby") | .name] | sort | join(",")') || return 1
  [[ $names == "$syncs" ]]
}
# Patroni 3.0.2 compares the standbys it picks with its /sync key, never with the
# synchronous_standby_names it wrote: when the sync standby stops, the leader empties /sync, names
# the other replica in synchronous_standby_names, waits 2 s for it to report 'sync', and only then
# records it in /sync. A second replica stopping inside those 2 s leaves /sync empty and the stopped
# replica named, both agree with "no replica left", and commits wait — in non-strict sync — until a
# replica returns (docs/reliability.md). Stop them one at a time, each once the leader has settled.
stop_replicas_settled() {
  local cluster=$1 leader=$2 h name deadline
  for h in $(status_json "$cluster" | jq -r '.clusters[0].members[] | select(.role!="Leader") | .host'); do
    name=pg-$(( ${h##*.} - 10 ))
    "$LAB" ssh "$name" systemctl stop "patroni@15-$cluster"
    deadline=$((SECONDS + 30))
    until sync_settled "$cluster" "$leader"; do
      (( SECONDS < deadline )) || fail "the leader's sync state did not settle 30 s after stopping $name"
      sleep 0.5
    done
  done
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
stop_replicas_settled guard "$leader"
t0=$SECONDS
if ! sql guard "$leader" "insert into t values (2)" 40; then
  echo "--- synchronous_standby_names: $(sql guard "$leader" "show synchronous_standby_names" 5 || true)"
  echo "--- waiting backends: $(sql guard "$leader" "select pid, wait_event, left(query, 60) from pg_stat_activity where wait_event = 'SyncRep'" 5 || true)"
  patroni_curl "$leader" /config --max-time 3 || true
  patroni_curl "$leader" /cluster --max-time 3 || true
  echo "--- the leader's sync decisions:"
  "$LAB" ssh "pg-$(( ${leader##*.} - 10 ))" 'grep -E "ynchronous|standby|Assigning|nosync" /var/log/pgclab/patroni@15-guard.service.log | tail -n 40' 2>/dev/null || true
  fail "write in non-strict sync mode did not complete"
fi
echo "write completed in $((SECONDS - t0))s"
start_replicas
expect_exit 0 pgc apply --progress log

# Both replicas lost inside that 2 s window, made deterministic: the other replica's Patroni is
# SIGKILLed (its PostgreSQL keeps streaming), the sync standby is stopped, and as soon as the leader
# names the other replica in synchronous_standby_names, that replica's PostgreSQL stops at once.
# Then nobody streams, /sync is empty, the leader names a replica that is gone, and commits wait.
step "sync: both replicas lost within Patroni's 2 s window: commits wait; apply releases them"
host_of() { local ip; ip=$(status_json guard | jq -r --arg n "$1" '.clusters[0].members[] | select(.name==$n) | .host'); echo "pg-$(( ${ip##*.} - 10 ))"; }
stuck=""
for attempt in 1 2 3; do
  leader=$(leader_address guard)
  leader_host=pg-$(( ${leader##*.} - 10 ))
  sync_name=$(status_json guard | jq -r '[.clusters[0].members[] | select(.role=="Sync Standby") | .name][0] // empty')
  other=$(status_json guard | jq -r '[.clusters[0].members[] | select(.role=="Replica") | .name][0] // empty')
  [[ -n $sync_name && -n $other ]] || fail "expected one sync standby and one replica (attempt $attempt)"
  sync_host=$(host_of "$sync_name")
  other_host=$(host_of "$other")
  "$LAB" ssh "$other_host" systemctl kill --kill-whom=main --signal=KILL patroni@15-guard
  "$LAB" ssh "$sync_host" systemctl stop patroni@15-guard &
  stopper=$!
  deadline=$((SECONDS + 20))
  until [[ $(sql guard "$leader" "show synchronous_standby_names" 2 || true) == *"$other"* ]]; do
    (( SECONDS < deadline )) || break
  done
  "$LAB" ssh "$other_host" runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl stop -m immediate -D /var/lib/postgresql/15/guard >/dev/null
  wait "$stopper" || true
  sleep 4  # the leader's 2 s wait, then a few HA loops of its own
  names=$(sql guard "$leader" "show synchronous_standby_names" 5 || true)
  rc=0
  sql guard "$leader" "insert into t values (3)" 5 >/dev/null || rc=$?
  echo "attempt $attempt: leader names $names; a write $([[ $rc -eq 124 ]] && echo waits || echo "returned $rc")"
  if [[ $rc -eq 124 && $names == *"$other"* ]]; then stuck=$other; break; fi
  start_replicas
  expect_exit 0 pgc apply --progress log >/dev/null
done
[[ -n $stuck ]] || fail "could not bring the leader into the stuck state in 3 attempts"
# The replicas' hosts are lost, so that the release (not a replica coming back) is what frees the
# commits.
replica_hosts=$(for n in 1 2 3; do [[ pg-$n == "$leader_host" ]] || echo "pg-$n"; done)
for h in $replica_hosts; do "$LAB" cut "$h"; done
PGC_SSH_CONNECT_TIMEOUT=3
pgc plan >"$WORK/plan.out" 2>&1 || true
grep -q "commits wait on $stuck" "$WORK/plan.out" || { cat "$WORK/plan.out"; fail "plan does not name the stuck standby $stuck"; }
rc=0
pgc apply --progress log >"$WORK/apply.out" 2>&1 || rc=$?
[[ $rc -ne 0 ]] || { cat "$WORK/apply.out"; fail "apply with both replica hosts cut off exited 0"; }
grep -q 'step="patch-dcs guard" duration=[0-9.]*s result=ok' "$WORK/apply.out" ||
  { cat "$WORK/apply.out"; fail "apply did not release the standby names"; }
t0=$SECONDS
sql guard "$leader" "insert into t values (4)" 10 ||
  { cat "$WORK/apply.out"; echo "leader names '$(sql guard "$leader" "show synchronous_standby_names" 5 || true)'";
    patroni_curl "$leader" /config || true; fail "a write still waits after the release"; }
echo "released: a write completes ($((SECONDS - t0))s); leader names '$(sql guard "$leader" "show synchronous_standby_names" 5)'"
for h in $replica_hosts; do "$LAB" restore "$h"; done
PGC_SSH_CONNECT_TIMEOUT=10
expect_exit 0 pgc apply --progress log
[[ $(sql guard "$leader" "select count(*) from t where i in (3, 4)") == 2 ]] || fail "the waiting write and the later one are not both there"
echo PASS

#!/usr/bin/env bash
# Faults (reliability issue, item 3): pgconverge killed with SIGKILL at random points of an
# apply, in a loop — during the bootstrap of a new cluster, then during mode and role changes.
# After every kill: each patroni.yml on the hosts is whole (parses, names its member), no data
# directory that existed is gone, a cluster that had a leader has one again within Patroni's ttl,
# and the run lock is free. At the end one apply converges and plan is empty.
source "$(dirname "$0")/lib.sh"
lab_up 3

iterations=${PGC_KILL_ITERATIONS:-8}
conf=/etc/patroni/15-kill.yml
data=/var/lib/postgresql/15/kill
states=("strict-sync 3 1 ha-read" "sync-all 3 1 ha" "sync 3 2 ha-read" "strict-sync-all 3 1 ha")

has_data() { "$LAB" exec "$1" test -s "$data/PG_VERSION"; }
has_leader() {
  local h
  for h in 11 12 13; do
    patroni_curl "$LAB_SUBNET.$h" /cluster --max-time 2 2>/dev/null |
      jq -e '[.members[]? | select(.role == "leader" or .role == "master")] | length == 1' >/dev/null 2>&1 && return 0
  done
  return 1
}
config_whole() {  # the file is absent, or complete YAML naming its member
  "$LAB" exec "$1" sh -c "test ! -e $conf || python3 -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); sys.exit(0 if d[\"name\"].startswith(\"kill-\") and d[\"scope\"] == \"kill\" else 1)' $conf"
}

declare -A had_data=()
led=0
points=()
mid_apply=0  # kills that hit a running apply after it had logged a step (observe, write, start…)
for ((i = 1; i <= iterations; i++)); do
  read -r mode n sync role <<<"${states[$(( (i - 1) % ${#states[@]} ))]}"
  write_cluster kill "$mode" "$n" "$sync" "$role"
  for h in pg-1 pg-2 pg-3; do has_data "$h" && had_data[$h]=1; done
  has_leader && led=1
  # Odd kills: 0.2–4.0 s after the start (before observing, while observing, writing configs,
  # starting, patching). Even kills: 0–1.5 s after the apply logged its first step, so that at
  # least half land among the steps however long observing takes (a sanitized build observes
  # several times slower).
  "$LAB" run "$PGC" apply -s "$LAB_MANIFESTS" -s "$CLUSTER_DIR" --ssh-identity "$LAB_SSH_KEY" \
    --known-hosts "$LAB_KNOWN_HOSTS" --state-dir "$STATE" --progress log >"$WORK/kill.out" 2>"$WORK/kill.err" &
  pid=$!
  if ((i % 2)); then
    delay=$(awk -v r="$RANDOM" 'BEGIN { printf "%.1f", 0.2 + (r % 39) / 10 }')
  else
    t_start=$(date +%s.%N)
    for _ in $(seq 300); do
      grep -q '^step ' "$WORK/kill.err" 2>/dev/null && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    after=$(awk -v r="$RANDOM" 'BEGIN { printf "%.1f", (r % 16) / 10 }')
    sleep "$after"
    delay=$(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  fi
  ((i % 2 == 0)) || sleep "$delay"
  what=$(tail -n 1 "$WORK/kill.err" 2>/dev/null | cut -c1-90)
  if kill -KILL "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null || true
    points+=("${delay}s ($mode/$role) after: ${what:-nothing logged yet}")
    [[ -n $what ]] && mid_apply=$((mid_apply + 1))
    echo "kill $i: SIGKILL after ${delay}s during $mode/$role; last step: ${what:-none}"
  else
    wait "$pid" || true
    points+=("${delay}s ($mode/$role): the apply had finished")
    echo "kill $i: the apply finished before ${delay}s"
  fi
  for h in pg-1 pg-2 pg-3; do
    config_whole "$h" || { "$LAB" exec "$h" cat "$conf" || true; fail "kill $i: $conf on $h is not whole"; }
    if [[ -n ${had_data[$h]:-} ]]; then has_data "$h" || fail "kill $i: the data directory on $h is gone"; fi
  done
  if ((led)); then
    t0=$SECONDS
    until has_leader; do
      (( SECONDS - t0 < 25 )) || fail "kill $i: the cluster has had no leader for 25s (ttl 10)"
      sleep 1
    done
  fi
done

echo "kills that landed mid-apply, after a logged step: $mid_apply of $iterations"
# A run where (nearly) every apply finished before its kill, or none had started working, tested nothing.
(( mid_apply >= 3 )) || fail "only $mid_apply of $iterations kills landed while an apply was working"

step "after $iterations kills: one apply converges (the lock is free, no stale state)"
write_cluster kill strict-sync 3 1
t0=$SECONDS
expect_exit 0 pgc apply --progress log --lock-timeout 1 >/dev/null
expect_exit 0 pgc plan >/dev/null
roles=$(role_counts kill)
[[ $roles == "Leader:1 Replica:1 Sync Standby:1" ]] || fail "roles after recovery: $roles"
check_replication kill 1
for h in pg-1 pg-2 pg-3; do has_data "$h" || fail "no data directory on $h"; done
echo "ok: converged $((SECONDS - t0))s after the last kill; killed at:"
printf '  %s\n' "${points[@]}"
echo PASS

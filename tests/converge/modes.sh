#!/usr/bin/env bash
# One cluster walks through every mode transition and back; each time plan shows the change and
# its impact, apply converges, and PostgreSQL and Patroni agree on the sync standbys.
source "$(dirname "$0")/lib.sh"
lab_up 3

step "bootstrap async"
write_cluster walk async 3
expect_exit 0 pgc apply --progress log
check_replication walk 0

transition() {
  local mode=$1 sync=$2 want=$3
  step "→ $mode (syncInstances $sync): expect $want sync standbys"
  write_cluster walk "$mode" 3 "$sync"
  expect_exit 2 pgc plan
  grep -q "Patroni dynamic configuration" "$WORK/out" || fail "plan does not show the DCS change"
  grep -q "impact:" "$WORK/out" || fail "plan does not show the impact"
  grep -q "^      $mode:" "$WORK/out" || fail "plan impact does not describe $mode"
  local t0=$SECONDS
  expect_exit 0 pgc apply --progress log
  echo "mode change to $mode: apply start to converged $((SECONDS - t0))s"
  check_replication walk "$want"
  expect_exit 0 pgc plan
}

transition sync 1 1
transition strict-sync 2 2
transition sync-all 1 2
transition strict-sync-all 1 2
transition async 1 0
# and back
transition strict-sync-all 1 2
transition sync-all 1 2
transition strict-sync 1 1
transition sync 2 2
transition async 1 0
echo PASS

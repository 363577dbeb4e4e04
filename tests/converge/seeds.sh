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

run_seed strict-sync 4 "Leader:1 Replica:1 Sync Standby:2"
run_seed sync-all 4 "Leader:1 Sync Standby:3"
run_seed strict-sync-all 6 "Leader:1 Sync Standby:5"
echo PASS

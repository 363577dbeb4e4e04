#!/usr/bin/env bash
# Drift made out of band — patronictl edit-config, an edited config file, a stopped service —
# shows in plan (exit 2) and is healed by apply; then plan exits 0.
source "$(dirname "$0")/lib.sh"
lab_up 3

write_cluster drifty sync 3 2
expect_exit 0 pgc apply --progress log
expect_exit 0 pgc plan

step "patronictl edit-config"
cat >"$WORK/patronictl.yml" <<YAML
scope: drifty
namespace: /service/
etcd3: {hosts: "$LAB_ETCD"}
YAML
"$LAB" run patronictl -c "$WORK/patronictl.yml" edit-config --force -s synchronous_node_count=1 -s synchronous_mode=false -s 'pause=true'
"$LAB" run patronictl -c "$WORK/patronictl.yml" edit-config --force -s 'pause=null' || true
expect_exit 2 pgc plan
grep -q "synchronous_node_count: 1 → 2" "$WORK/out" || fail "plan misses the count drift"
grep -q "synchronous_mode: false → true" "$WORK/out" || fail "plan misses the mode drift"
expect_exit 0 pgc apply --progress log
check_replication drifty 2
expect_exit 0 pgc plan

step "an edited config file on pg-2"
"$LAB" ssh pg-2 sed -i 's/nofailover: false/nofailover: true/' /etc/patroni/15-drifty.yml
expect_exit 2 pgc plan
grep -q "tags.nofailover: true → false" "$WORK/out" || fail "plan misses the file drift"
expect_exit 0 pgc apply --progress log
expect_exit 0 pgc plan

step "a stopped service on pg-3"
"$LAB" ssh pg-3 systemctl stop patroni@15-drifty
expect_exit 2 pgc plan
grep -q "service inactive" "$WORK/out" || fail "plan misses the stopped service"
expect_exit 0 pgc apply --progress log
check_replication drifty 2
expect_exit 0 pgc plan
grep -q "No changes" "$WORK/out" || fail "not idempotent"
expect_exit 0 pgc apply
grep -q "no changes were needed" "$WORK/out" || fail "second apply did not say it changed nothing"
echo PASS

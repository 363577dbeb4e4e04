#!/usr/bin/env bash
# The etcd pgconverge runs itself (EtcdCluster spec.hosts): on 3 bare hosts without the lab's
# etcd, one apply installs and configures etcd, forms a 3-member cluster, checks its health and
# bootstraps a sync Patroni cluster on it; a second plan is empty; an edited /etc/default/etcd on
# one member shows in plan and apply rewrites it and restarts that member alone.
source "$(dirname "$0")/lib.sh"
"$LAB" down >/dev/null 2>&1 || true
"$LAB" up 3 --no-etcd
# shellcheck source=/dev/null
source "$PGC_LAB_DIR/lab.env"
[[ -z $LAB_ETCD && ! -e $LAB_MANIFESTS/etcd.yaml ]] || fail "the lab runs its own etcd"

write_managed_etcd pg-1 pg-2 pg-3
write_cluster onetcd sync 3

# etcdctl from the client namespace against every member's client URL.
endpoints=$(printf 'http://%s:2379,' $LAB_HOST_ADDRESSES); endpoints=${endpoints%,}
etcd_health() { "$LAB" run env ETCDCTL_API=3 etcdctl --endpoints="$endpoints" --dial-timeout=2s endpoint health 2>&1; }

step "plan: the etcd steps come before any Patroni start"
expect_exit 2 pgc plan
order=$(grep -nE 'etcd dcs: members pg-1, pg-2, pg-3|member onetcd-0 \(pg-1\): patroni@15-onetcd' "$WORK/out" | cut -d: -f1 | tr '\n' ' ')
read -r etcd_line patroni_line <<<"$order"
[[ -n ${patroni_line:-} && $etcd_line -lt $patroni_line ]] || fail "etcd start is not planned before the first Patroni start ($order)"

step "a data directory someone else owns: an error naming host and step, never re-owned"
# (SECURITY class 2: apply used to `install -d -o etcd` whatever the path, re-owning it.)
"$LAB" ssh pg-3 'install -d -o root -g root -m 0755 /var/lib/etcd/dcs'
expect_exit 1 pgc apply --progress log
grep -q "host pg-3 (10\.250\.[0-9]*\.13): creating directory /var/lib/etcd/dcs: /var/lib/etcd/dcs exists and belongs to user root, not etcd; refusing to change the owner of a directory pgconverge did not create (exit status 1) (step: preparing etcd's data directory)" "$WORK/err" ||
  fail "apply did not name the host, the directory and the step"
[[ $("$LAB" ssh pg-3 stat -c '%U:%G %a' /var/lib/etcd/dcs) == "root:root 755" ]] || fail "the directory was re-owned"
"$LAB" ssh pg-3 rmdir /var/lib/etcd/dcs

step "apply: etcd formed, Patroni bootstrapped on it"
expect_exit 0 pgc apply --progress log
etcd_health | tee "$WORK/health"
[[ $(grep -c 'is healthy' "$WORK/health") -eq 3 ]] || fail "not every etcd member is healthy"
"$LAB" run env ETCDCTL_API=3 etcdctl --endpoints="$endpoints" member list -w json >"$WORK/members"
[[ $(jq -r '[.members[].name] | sort | join(",")' "$WORK/members") == "pg-1,pg-2,pg-3" ]] ||
  fail "members: $(cat "$WORK/members")"
for h in pg-1 pg-2 pg-3; do
  "$LAB" ssh "$h" 'stat -c "%U:%G %a" /var/lib/etcd/dcs; grep -c "^ETCD_NAME='"$h"'$" /etc/default/etcd; systemctl is-enabled etcd' \
    >"$WORK/host" || fail "$h: data dir or config missing"
  [[ $(tr '\n' ' ' <"$WORK/host") == "etcd:etcd 700 1 enabled " ]] || fail "$h: $(cat "$WORK/host")"
done
"$LAB" ssh pg-2 grep -q '10.250.*:2379' /etc/patroni/15-onetcd.yml || fail "Patroni is not pointed at the member hosts"
cat >"$WORK/patronictl.yml" <<YAML
scope: onetcd
namespace: /service/
etcd3: {hosts: "${endpoints//http:\/\//}"}
YAML
"$LAB" run patronictl -c "$WORK/patronictl.yml" list | tee "$WORK/list"
grep -q 'Leader' "$WORK/list" || fail "patronictl list (through the managed etcd) shows no leader"
check_replication onetcd 1

step "a second plan: no changes"
expect_exit 0 pgc plan
grep -q "No changes" "$WORK/out" || fail "not idempotent"

step "drift: an edited /etc/default/etcd on pg-2"
"$LAB" ssh pg-2 "echo ETCD_HEARTBEAT_INTERVAL=150 >> /etc/default/etcd"
pid_before=$("$LAB" ssh pg-2 systemctl show -p MainPID --value etcd)
expect_exit 2 pgc plan
grep -q "drift in ETCD_HEARTBEAT_INTERVAL" "$WORK/out" || fail "plan misses the etcd config drift"
grep -q "etcd dcs: member pg-2 (pg-2): etcd.service" "$WORK/out" || fail "plan does not restart pg-2's etcd"
grep -qE "member pg-(1|3) \(pg-(1|3)\): etcd.service" "$WORK/out" && fail "plan restarts a member without drift"
expect_exit 0 pgc apply --progress log
"$LAB" ssh pg-2 grep -q HEARTBEAT /etc/default/etcd && fail "the drift is still in pg-2's config"
pid_after=$("$LAB" ssh pg-2 systemctl show -p MainPID --value etcd)
[[ $pid_before != "$pid_after" ]] || fail "pg-2's etcd was not restarted"
etcd_health | tee "$WORK/health"
[[ $(grep -c 'is healthy' "$WORK/health") -eq 3 ]] || fail "etcd not healthy after the drift fix"
"$LAB" run patronictl -c "$WORK/patronictl.yml" list | grep -q Leader || fail "Patroni lost its leader"
expect_exit 0 pgc plan
grep -q "No changes" "$WORK/out" || fail "not idempotent after the drift fix"
echo "PASS ($SECONDS s)"

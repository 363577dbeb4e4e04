#!/usr/bin/env bash
# Only SSH reaches the hosts: the client namespace (where pgconverge runs) may open tcp/22 to the
# lab's hosts and nothing else (nftables inside that namespace), and the cluster's pg_hba admits no
# client CIDR. pgconverge reaches Patroni's REST API and PostgreSQL through each host's SSH
# (providers/ssh/tunnels), so a strict-sync cluster still converges and a plan afterwards is empty.
# The DCS (the lab's etcd namespace, spec.endpoints) stays direct. Then the same with an etcd that
# pgconverge runs on the hosts (EtcdCluster spec.hosts): its client port is filtered too, and the
# first bootstrap's DCS check (does etcd hold the cluster already?) goes through the hosts' SSH.
source "$(dirname "$0")/lib.sh"
command -v nft >/dev/null || [[ -x /usr/sbin/nft ]] || skip "missing nft (apt-get install nftables)"
lab_up 3

# filter_to_ssh: the client namespace may open tcp/22 to the lab's hosts and nothing else.
filter_to_ssh() {
  local hosts
  hosts=$(tr ' ' ',' <<<"$LAB_HOST_ADDRESSES")
  "$LAB" run nft -f - <<NFT
table inet pgc_tunnel_test {
  chain out {
    type filter hook output priority 0; policy accept;
    ip daddr { $hosts } tcp dport 22 accept
    ip daddr { $hosts } reject
  }
}
NFT
}

step "the client namespace may reach the hosts on tcp/22 only"
filter_to_ssh
first=${LAB_HOST_ADDRESSES%% *}
if "$LAB" run curl -s --max-time 3 "http://$first:8008/" >/dev/null 2>&1; then
  fail "Patroni's port on $first still answers from the client namespace"
fi
"$LAB" run bash -c "exec 3<>/dev/tcp/$first/5432" 2>/dev/null && fail "PostgreSQL's port on $first still answers"
"$LAB" ssh pg-1 true || fail "ssh to pg-1 does not work through the filter"
echo "tcp/8008 and tcp/5432 refused, tcp/22 open"

step "a strict-sync cluster with no client CIDR converges through SSH alone"
write_cluster only-ssh strict-sync 3 1
sed -i '/pgconverge.io\/client-cidrs/d' "$CLUSTER_DIR/cluster.yaml"
grep -q client-cidrs "$CLUSTER_DIR/cluster.yaml" && fail "the cluster still declares client CIDRs"
expect_exit 0 pgc apply --progress log
grep -q "cluster only-ssh: converged" "$WORK/out" || fail "apply did not report convergence"

step "plan afterwards: no change"
expect_exit 0 pgc plan
grep -q "No changes" "$WORK/out" || fail "plan after apply is not empty"
roles=$(pgc status only-ssh -o json | jq -r '[.clusters[0].members[].role] | sort | join(",")')
echo "roles: $roles"
[[ $roles == Leader,*Sync\ Standby* && $(tr ',' '\n' <<<"$roles" | wc -l) -eq 3 ]] ||
  fail "expected a leader, a sync standby and 3 members: $roles"
"$LAB" run nft delete table inet pgc_tunnel_test

step "an etcd that pgconverge runs on the hosts, its client port filtered too"
"$LAB" down >/dev/null 2>&1 || true
"$LAB" up 3 --no-etcd
# shellcheck source=/dev/null
source "$PGC_LAB_DIR/lab.env"
first=${LAB_HOST_ADDRESSES%% *}
rm -rf "$CLUSTER_DIR" "$STATE"; mkdir -p "$CLUSTER_DIR"
filter_to_ssh
"$LAB" run bash -c "exec 3<>/dev/tcp/$first/2379" 2>/dev/null && fail "etcd's client port on $first answers"
write_managed_etcd pg-1 pg-2 pg-3
write_cluster ssh-etcd sync 3 1
sed -i '/pgconverge.io\/client-cidrs/d' "$CLUSTER_DIR/cluster.yaml"
expect_exit 0 pgc apply --progress log
grep -q "cluster ssh-etcd: converged" "$WORK/out" || fail "apply did not report convergence"
expect_exit 0 pgc plan
grep -q "No changes" "$WORK/out" || fail "plan after apply is not empty"
"$LAB" run nft delete table inet pgc_tunnel_test
echo "OK"

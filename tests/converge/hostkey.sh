#!/usr/bin/env bash
# A host whose key does not match known_hosts is refused with a clear error (nothing is run on
# it) and the other hosts still converge.
source "$(dirname "$0")/lib.sh"
lab_up 3

step "replace pg-2's key in known_hosts by another key"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/impostor"
bad=$WORK/known_hosts
awk -v k="$(cut -d' ' -f1,2 "$WORK/impostor.pub")" '$1 ~ /10\.250\.0\.12/ {print $1, k; next} {print}' \
  "$LAB_KNOWN_HOSTS" >"$bad"
LAB_KNOWN_HOSTS=$bad

write_cluster keys async 3
expect_exit 1 pgc apply --progress log
grep -q "pg-2 (10.250.0.12): ssh: host key mismatch" "$WORK/out" "$WORK/err" || fail "no clear host key error"
"$LAB" ssh pg-2 test ! -e /etc/patroni/15-keys.yml || fail "something was written to the refused host"
# status still shows the cluster, and exits 1 because a host was refused.
expect_exit 1 pgc status keys -o json >/dev/null
grep -q "pg-2 (10.250.0.12): ssh: host key mismatch" "$WORK/err" || fail "status does not name the refused host"
roles=$(jq -r '[.clusters[0].members[].role] | group_by(.) | map("\(.[0]):\(length)") | join(" ")' "$WORK/out")
echo "roles: $roles"
[[ $roles == "Leader:1 Replica:1" ]] || fail "the other two hosts did not converge: $roles"
echo PASS

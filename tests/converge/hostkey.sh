#!/usr/bin/env bash
# A host whose key does not match known_hosts is refused with a clear error (nothing is run on
# it): a new cluster then gets no secrets at all (a first bootstrap needs every host to answer,
# docs/security.md §9), and a formed cluster's other hosts still take a change.
source "$(dirname "$0")/lib.sh"
lab_up 3

ssh-keygen -q -t ed25519 -N '' -f "$WORK/impostor"
good=$LAB_KNOWN_HOSTS
bad=$WORK/known_hosts
pg2=$LAB_SUBNET.12
awk -v k="$(cut -d' ' -f1,2 "$WORK/impostor.pub")" -v a="$pg2" '$1 == a {print $1, k; next} {print}' "$good" >"$bad"
config=/etc/patroni/15-keys.yml

step "a new cluster while pg-2's key in known_hosts is another key: refused, no secrets generated"
LAB_KNOWN_HOSTS=$bad
write_cluster keys async 3
expect_exit 1 pgc apply --progress log
grep -q "pg-2 ($pg2): ssh: host key mismatch" "$WORK/out" "$WORK/err" || fail "no clear host key error"
grep -q "not every host answered" "$WORK/out" "$WORK/err" || fail "the refusal to generate secrets is not explained"
[[ ! -e $STATE/secrets/default.keys.json ]] || fail "secrets were generated although pg-2 did not answer"
"$LAB" ssh pg-2 test ! -e "$config" || fail "something was written to the refused host"

step "every key known: the cluster forms"
LAB_KNOWN_HOSTS=$good
expect_exit 0 pgc apply --progress log
[[ $(role_counts keys) == "Leader:1 Replica:2" ]] || fail "the cluster did not form: $(role_counts keys)"

step "pg-2's key wrong again, a change of every member's tags: the other two take it, pg-2 is untouched"
before_1=$("$LAB" ssh pg-1 sha256sum "$config")
before_2=$("$LAB" ssh pg-2 sha256sum "$config")
LAB_KNOWN_HOSTS=$bad
write_cluster keys async 3 1 ha
expect_exit 1 pgc apply --progress log
grep -q "pg-2 ($pg2): ssh: host key mismatch" "$WORK/out" "$WORK/err" || fail "no clear host key error"
[[ $("$LAB" ssh pg-1 sha256sum "$config") != "$before_1" ]] || fail "pg-1 did not take the change"
[[ $("$LAB" ssh pg-2 sha256sum "$config") == "$before_2" ]] || fail "something was written to the refused host"
# status still shows the cluster, and exits 1 because a host was refused.
expect_exit 1 pgc status keys -o json >/dev/null
grep -q "pg-2 ($pg2): ssh: host key mismatch" "$WORK/err" || fail "status does not name the refused host"
echo PASS

#!/usr/bin/env bash
# Role ha vs ha-read and readonly/none groups end up as the right Patroni tags, checked through
# GET /replica (load balancing) and switchover eligibility.
source "$(dirname "$0")/lib.sh"
lab_up 4

groups='    groups:
    - {name: ro, role: readonly, instances: 1}
    - {name: hidden, role: none, instances: 1}'

replica_code() { patroni_curl "$1" /replica -o /dev/null -w '%{http_code}'; }

step "role ha with readonly and none groups"
write_cluster tags async 4 1 ha "$groups"
expect_exit 2 pgc plan
grep -q "never become leader (nofailover): tags-2 and tags-3" "$WORK/out" || fail "impact misses nofailover members"
expect_exit 0 pgc apply --progress log
# slots: tags-0,1 main group (ha) on pg-1,2; tags-2 readonly on pg-3; tags-3 none on pg-4
leader=$(leader_address tags)
[[ $leader == $LAB_SUBNET.11 ]] || fail "leader should be tags-0 on pg-1, is $leader"
[[ $(replica_code $LAB_SUBNET.12) == 503 ]] || fail "ha replica must not serve reads (noloadbalance)"
[[ $(replica_code $LAB_SUBNET.13) == 200 ]] || fail "readonly member must serve reads"
[[ $(replica_code $LAB_SUBNET.14) == 503 ]] || fail "none member must not serve reads"
for addr in $LAB_SUBNET.13 $LAB_SUBNET.14; do
  t=$(patroni_curl "$addr" /patroni | jq -c '.tags')
  echo "$addr tags $t"
  [[ $(jq '.nofailover' <<<"$t") == true ]] || fail "$addr must have nofailover true (a YAML boolean)"
done

step "switchover eligibility: a readonly member cannot lead, an ha member can"
auth="pgconverge:$(secret tags restapi)"
code=$(patroni_curl $LAB_SUBNET.11 /switchover -o "$WORK/sw" -w '%{http_code}' -u "$auth" -XPOST -d '{"leader":"tags-0","candidate":"tags-2"}')
echo "switchover to readonly: $code $(cat "$WORK/sw")"
[[ $code != 200 ]] || fail "switchover to a nofailover member was accepted"
code=$(patroni_curl $LAB_SUBNET.11 /switchover -o "$WORK/sw" -w '%{http_code}' -u "$auth" -XPOST -d '{"leader":"tags-0","candidate":"tags-1"}')
echo "switchover to ha: $code $(cat "$WORK/sw")"
if [[ $code != 200 ]]; then
  for h in pg-1 pg-2; do echo "--- $h: Patroni's log"; "$LAB" ssh "$h" tail -n 40 /var/log/pgclab/patroni@15-tags.service.log || true; done
  fail "switchover to an ha member was refused"
fi

step "role ha-read: main group replicas now serve reads"
write_cluster tags async 4 1 ha-read "$groups"
expect_exit 2 pgc plan
grep -q "tags.noloadbalance: true → false" "$WORK/out" || fail "plan does not show the tag change"
expect_exit 0 pgc apply --progress log
for addr in $LAB_SUBNET.11 $LAB_SUBNET.12; do
  t=$(patroni_curl "$addr" /patroni | jq -c '.tags // {}')
  [[ $(jq '.noloadbalance // false' <<<"$t") == false ]] || fail "$addr still has noloadbalance"
done
new_leader=$(leader_address tags)
for addr in $LAB_SUBNET.11 $LAB_SUBNET.12; do
  [[ $addr == "$new_leader" ]] || [[ $(replica_code "$addr") == 200 ]] || fail "ha-read replica $addr must serve reads"
done
expect_exit 0 pgc plan
echo PASS

#!/usr/bin/env bash
# Role ha vs ha-read and readonly/none groups end up as the right Patroni tags, checked through
# GET /replica (load balancing) and switchover eligibility; a declared pg_hba line reaches every
# member's PostgreSQL in its place and refuses what it says.
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

step "declared pg_hba lines (dynamicConfig.postgresql.pg_hba) reach every member, after pgconverge's own"
write_cluster tags async 4 1 ha-read "$groups"
sed -i "s|      dynamicConfig: {ttl: 10, loop_wait: 1, retry_timeout: 4}|      dynamicConfig:\n        ttl: 10\n        loop_wait: 1\n        retry_timeout: 4\n        postgresql:\n          pg_hba: [\"hostssl all blocked $LAB_CLIENT_ADDRESS/32 reject\"]|" "$CLUSTER_DIR/cluster.yaml"
grep -q "hostssl all blocked" "$CLUSTER_DIR/cluster.yaml" || fail "could not declare the pg_hba line"
expect_exit 2 pgc plan
expect_exit 0 pgc apply --progress log
for addr in $LAB_SUBNET.11 $LAB_SUBNET.12 $LAB_SUBNET.13 $LAB_SUBNET.14; do
  rules=$(sql tags "$addr" "SELECT string_agg(line_number || ':' || type || ':' || array_to_string(user_name, ',') || ':' || auth_method, ' ' ORDER BY line_number) FROM pg_hba_file_rules")
  echo "$addr: $rules"
  blocked=$(grep -o '[0-9]*:hostssl:blocked:reject' <<<"$rules" | cut -d: -f1)
  last_replication=$(grep -o '[0-9]*:hostssl:replicator:scram-sha-256' <<<"$rules" | tail -1 | cut -d: -f1)
  first_all=$(grep -o '[0-9]*:hostssl:all:scram-sha-256' <<<"$rules" | head -1 | cut -d: -f1)
  [[ -n $blocked && -n $last_replication && -n $first_all ]] || fail "$addr: the declared line or pgconverge's lines are missing"
  (( last_replication < blocked && blocked < first_all )) || fail "$addr: the declared line is not between replication and client lines"
done
refused=$("$LAB" run env PGPASSWORD=x PGCONNECT_TIMEOUT=5 psql -h "$(leader_address tags)" -U blocked -d postgres -XAtqc 'SELECT 1' 2>&1 || true)
echo "as blocked: $refused"
grep -q 'pg_hba.conf rejects connection' <<<"$refused" || fail "the declared reject line did not refuse"
[[ $(sql tags "$(leader_address tags)" "SELECT 1") == 1 ]] || fail "pgconverge's own access broke"
expect_exit 0 pgc plan
echo PASS

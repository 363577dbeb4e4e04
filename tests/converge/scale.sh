#!/usr/bin/env bash
# Scale 3 → 4 → 3 with sync-all keeps writes available throughout.
source "$(dirname "$0")/lib.sh"
lab_up 4

write_cluster grow sync-all 3
expect_exit 0 pgc apply --progress log
check_replication grow 2
leader=$(leader_address grow)
sql grow "$leader" "create table w(i serial, at timestamptz default now())"

# A writer that commits every 0.2 s, each with a 10 s client-side timeout.
writer() {
  local pw failures=0 ok=0
  pw=$(secret grow superuser)
  while [[ ! -e $WORK/stop ]]; do
    if "$LAB" run env PGPASSWORD="$pw" PGCONNECT_TIMEOUT=3 timeout 10 \
         psql -h "$(cat "$WORK/leader")" -U postgres -XAtqc "insert into w default values" >/dev/null 2>&1; then
      ok=$((ok + 1))
    else
      failures=$((failures + 1))
    fi
    sleep 0.2
  done
  echo "$ok $failures" >"$WORK/writer"
}
echo "$leader" >"$WORK/leader"
writer &
wpid=$!

step "scale up to 4"
write_cluster grow sync-all 4
expect_exit 2 pgc plan
expect_exit 0 pgc apply --progress log
check_replication grow 3
step "scale down to 3"
write_cluster grow sync-all 3
expect_exit 2 pgc plan
grep -q "grow-3" "$WORK/out" || fail "plan does not remove grow-3"
expect_exit 0 pgc apply --progress log
check_replication grow 2
touch "$WORK/stop"
wait "$wpid"
read -r ok failures <"$WORK/writer"
echo "writer: $ok commits, $failures failures"
[[ $ok -gt 20 ]] || fail "writer made too few commits ($ok)"
[[ $failures -eq 0 ]] || fail "writes failed $failures times during scaling"
"$LAB" ssh pg-4 test -f /var/lib/postgresql/15/grow/PG_VERSION || fail "scale down deleted the data directory"
echo PASS

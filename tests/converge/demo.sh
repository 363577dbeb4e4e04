#!/usr/bin/env bash
# The README's first command, as a user runs it: scripts/demo installs (a no-op here), builds,
# brings up 4 lab hosts, applies the lab variant of the strict-sync seed and prints status, which
# must show the seed page's roles: Leader + 2 Sync Standby + 1 Replica, Ready.
source "$(dirname "$0")/lib.sh"
"$LAB" down >/dev/null 2>&1 || true
# The build tree of the binary under test (plain, or CI's sanitized one): scripts/demo's build is
# then a no-op instead of a second build from scratch.
PGC_BUILD_DIR=$(dirname "$PGC_BINARY") "$ROOT/scripts/demo" >"$WORK/demo.out" 2>&1 || { cat "$WORK/demo.out"; fail "scripts/demo failed"; }
out=$(cat "$WORK/demo.out")
[[ $(grep -c '| Leader ' <<<"$out") == 1 && $(grep -c '| Sync Standby ' <<<"$out") == 2 &&
   $(grep -c '| Replica ' <<<"$out") == 1 ]] || { echo "$out"; fail "status does not show Leader + 2 Sync Standby + 1 Replica"; }
grep -q "Ready=True (Converged)" <<<"$out" || { echo "$out"; fail "status does not show Ready=True"; }
echo PASS

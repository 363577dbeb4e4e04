#!/usr/bin/env bash
# The real `pgconverge serve` under webhook abuse, on 127.0.0.1 only: its source is a file://
# git repository this script makes (manifests without hosts or clusters, so that a run needs no
# SSH and ends "no-change"), polled once an hour so that only webhooks trigger runs. Oversized
# bodies, slow and silent clients, malformed HTTP, bad signatures and tokens, wrong methods and a
# connection flood (hostile_clients.py) must each be refused in bounded time, trigger no run
# (history and /metrics) and leave VmRSS bounded; then correctly signed webhooks of each kind do
# trigger a run, a replayed delivery id does not, and SIGTERM stops the daemon promptly although a
# client holds a connection open. Under idle, slowloris and webhook floods (also from 64 source
# addresses in 127.0.0.0/8) /healthz stays answered on `listen` and on `metricsListen`; a flood
# of replays of one signed delivery with new delivery ids starts at most a few runs (one per
# minInterval), visible in /metrics. Every process started here is stopped by its PID.
#
# Usage: serve_webhook_abuse.sh PGCONVERGE_BINARY. Exits 77 (skipped) without git or python3.
set -euo pipefail

PGC=${1:?usage: serve_webhook_abuse.sh PGCONVERGE_BINARY}
HERE=$(cd "$(dirname "$0")" && pwd)
CLIENTS=$HERE/hostile_clients.py
for tool in git python3; do
  command -v "$tool" >/dev/null || { echo "SKIPPED: $tool is not installed"; exit 77; }
done
[[ -x $PGC ]] || { echo "FAIL: $PGC is not an executable"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgc-serve-abuse.XXXXXX")
STATE=$WORK/state
SERVE_PID=""
IDLE_PID=""
T0=$SECONDS
cleanup() {
  local rc=$?
  for pid in $IDLE_PID $SERVE_PID; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ $rc -ne 0 && -f $WORK/serve.log ]]; then
    echo "--- serve.log (last 40 lines)"
    tail -40 "$WORK/serve.log"
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
step() { echo "== $* ($((SECONDS - T0))s)"; }

# --- the source, the secrets, the config ---------------------------------------------------------
git_() { git -c user.name=pgc-test -c user.email=pgc@test -c init.defaultBranch=main "$@"; }
git_ init -q "$WORK/repo"
mkdir -p "$WORK/repo/clusters"
cat >"$WORK/repo/clusters/configs.yaml" <<'YAML'
# Configurations only: no Host, no SGCluster, so a run touches no host and plans no change.
apiVersion: stackgres.io/v1
kind: SGPostgresConfig
metadata: {namespace: abuse, name: pgconfig1}
spec:
  postgresVersion: "16"
  postgresql.conf: {shared_buffers: '256MB'}
---
apiVersion: stackgres.io/v1
kind: SGInstanceProfile
metadata: {namespace: abuse, name: size-s}
spec: {cpu: "1", memory: "2Gi"}
YAML
git_ -C "$WORK/repo" add -A
git_ -C "$WORK/repo" commit -qm "configurations only"
HEAD_SHA=$(git -C "$WORK/repo" rev-parse HEAD)

mkdir -m 700 "$WORK/secrets"
for receiver in github gitlab generic; do
  python3 -c 'import secrets; print(secrets.token_urlsafe(32))' >"$WORK/secrets/$receiver.secret"
  chmod 600 "$WORK/secrets/$receiver.secret"
done
free_port() { python3 "$HERE/free_port.py"; }
PORT=$(free_port)
MPORT=$(free_port)
while [[ $MPORT == "$PORT" ]]; do MPORT=$(free_port); done
cat >"$WORK/serve.yaml" <<YAML
source: {url: "file://$WORK/repo", ref: main, path: clusters}
stateDir: "$STATE"
interval: 1h
resync: 1h
jitter: 0
listen: 127.0.0.1:$PORT
metricsListen: 127.0.0.1:$MPORT
webhooks:
  - {name: github, kind: github, path: /hooks/github, secretFile: "$WORK/secrets/github.secret", minInterval: 2s}
  - {name: gitlab, kind: gitlab, path: /hooks/gitlab, secretFile: "$WORK/secrets/gitlab.secret"}
  - {name: generic, kind: generic, path: /hooks/generic, secretFile: "$WORK/secrets/generic.secret"}
YAML

# --- helpers over the history --------------------------------------------------------------------
history_json() { "$PGC" history --state-dir "$STATE" -o json; }
# runs [TRIGGER_PREFIX]: how many runs the history records (with a trigger starting so).
runs() {
  history_json | python3 -c 'import json, sys
prefix = sys.argv[1]
print(sum(1 for r in json.load(sys.stdin)["runs"] if r["trigger"].startswith(prefix)))' "${1-}"
}
# wait_runs N: until the history records N runs (at most 5 s); fails otherwise.
wait_runs() {
  for _ in $(seq 50); do
    [[ $(runs) -ge $1 ]] && break
    sleep 0.1
  done
  [[ $(runs) -eq $1 ]] || fail "want $1 runs in the history, got $(runs): $(history_json | head -c 2000)"
}
# newest_run_is TRIGGER: the newest run was TRIGGER's, of HEAD, and succeeded without changes.
newest_run_is() {
  history_json | python3 -c 'import json, sys
run = json.load(sys.stdin)["runs"][-1]
ok = run["trigger"] == sys.argv[1] and run["revision"]["sha"] == sys.argv[2] and run["result"] == "no-change"
sys.exit(0 if ok else "newest run: %s %s %s" % (run["trigger"], run["revision"]["sha"], run["result"]))' \
    "$1" "$HEAD_SHA"
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVE_PID/status"; }
hook() { python3 "$CLIENTS" hook "$PORT" "$WORK/secrets" "$@"; }

# --- start ----------------------------------------------------------------------------------------
step "serve on 127.0.0.1:$PORT, source file://…/repo, interval 1h"
# Under AddressSanitizer (a sanitized build: PGC_SANITIZE) freed memory waits in a quarantine of
# up to 256 MiB before reuse, which VmRSS would count: keep it small here so that the bound below
# still measures what serve holds.
if [[ -n ${PGC_SANITIZE:-} ]]; then
  export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8
fi
"$PGC" serve --config "$WORK/serve.yaml" >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 100); do
  grep -q '^reconciled trigger=poll' "$WORK/serve.log" 2>/dev/null && break
  kill -0 "$SERVE_PID" 2>/dev/null || fail "serve exited: $(cat "$WORK/serve.log")"
  sleep 0.1
done
grep -q '^reconciled trigger=poll' "$WORK/serve.log" || fail "serve did not finish its first poll within 10 s"
wait_runs 1
newest_run_is poll || fail "the first poll was not recorded as a no-change run of $HEAD_SHA"
RSS_BEFORE=$(rss_kib)
echo "ok: first poll recorded; VmRSS ${RSS_BEFORE} KiB"

# --- everything that must be refused ------------------------------------------------------------
step "hostile clients: each must be refused (4xx) or cut off (head 5 s, request 10 s), none may trigger a run"
python3 "$CLIENTS" refuse "$PORT" "$WORK/secrets" || fail "hostile clients (see above)"
kill -0 "$SERVE_PID" 2>/dev/null || fail "serve died under the hostile clients"
RSS_AFTER=$(rss_kib)
echo "VmRSS before ${RSS_BEFORE} KiB, after ${RSS_AFTER} KiB"
# Buffering what was sent would take > 300 MiB (32 + 2 oversized 2 MiB bodies, 256 + 192
# connections); the server holds at most 64 bodies of at most 1 MiB at a time.
((RSS_AFTER < RSS_BEFORE + 96 * 1024)) || fail "VmRSS grew from ${RSS_BEFORE} to ${RSS_AFTER} KiB"
sleep 1  # a run a refused request had asked for would have started by now
[[ $(runs) -eq 1 ]] || fail "a refused request triggered a run: $(history_json | head -c 2000)"
[[ $(runs webhook) -eq 0 ]] || fail "the history records a webhook run"
grep -q '^reconcile trigger=webhook' "$WORK/serve.log" && fail "the log shows a webhook-triggered run"
for receiver in github gitlab generic; do
  ! grep -qF -- "$(cat "$WORK/secrets/$receiver.secret")" "$WORK/serve.log" || fail "the $receiver secret is in the log"
done
echo "ok: nothing was triggered, the daemon is alive"

# --- and what must be accepted --------------------------------------------------------------------
step "a correctly signed webhook of each kind triggers one run; a replayed delivery does not"
n=1
for receiver in github gitlab generic; do
  status=$(hook "$receiver" "delivery-$receiver-1")
  [[ $status == 202 ]] || fail "a correctly signed $receiver webhook was answered $status, not 202"
  n=$((n + 1))
  wait_runs "$n"
  newest_run_is "webhook:$receiver" || fail "the $receiver webhook's run was not recorded as such"
  # The same delivery again, as sent and with another (correctly signed) body.
  status=$(hook "$receiver" "delivery-$receiver-1")
  [[ $status == 409 ]] || fail "a replayed $receiver delivery was answered $status, not 409"
  status=$(hook "$receiver" "delivery-$receiver-1" '{"ref":"refs/heads/other"}')
  [[ $status == 409 ]] || fail "a replayed $receiver delivery id with another body was answered $status, not 409"
  echo "ok: $receiver: 202 → run $n recorded (webhook:$receiver); the replays → 409"
done
sleep 1
[[ $(runs) -eq $n ]] || fail "a replayed delivery triggered a run: $(runs) runs, want $n"
for receiver in github gitlab generic; do
  for status in 202:1 409:2; do
    got=$(python3 "$CLIENTS" metric "$PORT" pgconverge_webhook_requests_total \
      "{receiver=\"$receiver\",status=\"${status%%:*}\"}")
    [[ $got == "${status#*:}" ]] ||
      fail "/metrics counts $got $receiver webhooks answered ${status%%:*}, want ${status#*:}"
  done
done
got=$(python3 "$CLIENTS" metric "$PORT" pgconverge_reconcile_total '{result="no-change"}')
[[ $got == "$n" ]] || fail "/metrics counts $got no-change runs, want $n"
echo "ok: history and /metrics agree: $n runs, 3 accepted webhooks, 6 replays refused"

# --- floods ---------------------------------------------------------------------------------------
step "/healthz under floods, on listen (127.0.0.1:$PORT) and metricsListen (127.0.0.1:$MPORT)"
python3 "$CLIENTS" floods "$PORT" 3 "$MPORT" || fail "/healthz under floods (see above)"
kill -0 "$SERVE_PID" 2>/dev/null || fail "serve died under the floods"
# code PORT METHOD PATH: the HTTP status of one bodiless request.
code() {
  python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
s.sendall(("%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n" % (sys.argv[2], sys.argv[3])).encode())
print(s.recv(64).split(b" ")[1].decode())' "$@"
}
[[ $(code "$MPORT" GET /metrics) == 200 && $(code "$MPORT" GET /healthz) == 200 ]] ||
  fail "metricsListen does not serve /metrics and /healthz"
[[ $(code "$MPORT" POST /hooks/github) == 404 ]] || fail "metricsListen answers a webhook path"
got=$(python3 "$CLIENTS" metric "$PORT" pgconverge_http_connections_total '{listener="listen",outcome="evicted"}')
((got > 0)) || fail "/metrics counts no evicted connection on listen after the floods"
echo "ok: /healthz answered under every flood; metricsListen serves only /metrics and /healthz; $got connections evicted"

step "a replay flood: one signed github delivery 300 times over 5 s, new delivery ids, minInterval 2s"
before=$(runs webhook:github)
sleep 2  # github's minInterval since its last run has passed
read -r statuses took < <(python3 "$CLIENTS" replay "$PORT" "$WORK/secrets" github 300 5)
echo "statuses $statuses in ${took}s"
sleep 3  # the held run starts when minInterval has passed, and completes
added=$(($(runs webhook:github) - before))
# At most one run per minInterval (2 s) while the flood lasts, plus the held one at its end.
max_runs=$(python3 -c 'import math, sys; print(2 + math.floor(float(sys.argv[1]) / 2))' "$took")
((added >= 1 && added <= max_runs)) || fail "the replay flood (${took}s) started $added runs, want 1 to $max_runs"
coalesced=$(python3 "$CLIENTS" metric "$PORT" pgconverge_webhook_triggers_total '{receiver="github",outcome="coalesced"}')
accepted=$(sed -n 's/.*202:\([0-9]*\).*/\1/p' <<<"$statuses")
((coalesced >= accepted - max_runs)) || fail "/metrics counts $coalesced coalesced github webhooks of $accepted accepted"
[[ $statuses == *"409:"* ]] || fail "a replayed delivery id inside the flood was not refused 409: $statuses"
echo "ok: 300 replays in ${took}s → $added runs (at most $max_runs), $coalesced coalesced (/metrics)"

# --- stop ----------------------------------------------------------------------------------------
step "SIGTERM with a silent client connected"
python3 "$CLIENTS" idle "$PORT" 30 &
IDLE_PID=$!
sleep 1.5  # past the kernel's TCP_DEFER_ACCEPT (1 s): the daemon holds the connection
start_ms=$(date +%s%3N)
kill -TERM "$SERVE_PID"
rc=0
wait "$SERVE_PID" || rc=$?
SERVE_PID=""
took=$(($(date +%s%3N) - start_ms))
[[ $rc -eq 0 ]] || fail "serve exited $rc after SIGTERM"
((took < 3000)) || fail "serve took ${took} ms to stop"
grep -q '^stopped' "$WORK/serve.log" || fail "no 'stopped' line in the log"
kill -KILL "$IDLE_PID" 2>/dev/null || true
wait "$IDLE_PID" 2>/dev/null || true
IDLE_PID=""
echo "ok: stopped in ${took} ms, exit 0"
step "passed"

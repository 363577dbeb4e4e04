#!/usr/bin/env bash
# The real binary against git remotes that never answer, credentials in URLs and files, signals,
# and damaged state — all on 127.0.0.1 (fake_git_servers.py):
#   - plan and apply return non-zero within the fetch deadline (--git-timeout) naming the source
#     without its credentials, for a listener that never answers and an HTTP one that stalls
#     after its headers; nothing of the credentials in output, history, the state dir, or its
#     cache directory names (SHA-256, 0700); a cache dir of the old naming is removed
#   - credentials from --git-credentials-file / $PGCONVERGE_GIT_CREDENTIALS_FILE reach the server;
#     a file others may read is refused; no secret is echoed
#   - apply on SIGTERM during the fetch stops (the figure printed; about 0.15 s), records "interrupted", exits 1;
#     plan on SIGTERM dies and its fetch child with it
#   - serve: /healthz fails with a reason once a run is stuck beyond stuckAfter; SIGTERM stops
#     it (the figure printed; about 0.1 s) although the fetch hangs; its fetch child is gone
#   - `pgconverge history` on a damaged history.json warns, moves it aside, exits 1
# Prints the measured figures; the asserted bounds are generous (CI runs it under ASan on 2
# loaded cores) and only tell a deadline from a hang. Every process started here is stopped by its PID.
#
# Usage: git_faults.sh PGCONVERGE_BINARY. Exits 77 (skipped) without python3 or curl.
set -euo pipefail

PGC=${1:?usage: git_faults.sh PGCONVERGE_BINARY}
HERE=$(cd "$(dirname "$0")" && pwd)
SERVERS=$HERE/fake_git_servers.py
for tool in python3 curl; do
  command -v "$tool" >/dev/null || { echo "SKIPPED: $tool is not installed"; exit 77; }
done
[[ -x $PGC ]] || { echo "FAIL: $PGC is not an executable"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgc-git-faults.XXXXXX")
STATE=$WORK/state
PIDS=()
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ $rc -ne 0 ]]; then
    for f in "$WORK"/*.err "$WORK"/serve.log; do
      [[ -f $f ]] && { echo "--- $f (last 20 lines)"; tail -20 "$f"; }
    done
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }
below() { python3 -c "import sys; sys.exit(0 if $1 < $2 else 1)"; }
SECRET=s3cretPASSWORD
USER_=deployUSER

# start_server MODE NAME [LOG]: sets PORT
start_server() {
  python3 "$SERVERS" "$1" "$WORK/$2.port" "${3:-/dev/null}" &
  PIDS+=($!)
  for _ in $(seq 50); do [[ -s $WORK/$2.port ]] && break; sleep 0.1; done
  PORT=$(cat "$WORK/$2.port")
}
alive() {  # PID: running (a zombie waiting for its reaper is not)
  local _pid _comm state
  [[ -r /proc/$1/stat ]] || return 1
  read -r _pid _comm state _ <"/proc/$1/stat" || return 1
  [[ $state != Z ]]
}
no_secret() {  # FILE...: none holds a credential
  if grep -rl -e "$SECRET" -e "$USER_" -e filetoken "$@" 2>/dev/null; then fail "a credential leaked into $*"; fi
}

start_server silent silent
SILENT=$PORT
start_server stall stall
STALL=$PORT
mkdir -p "$STATE/sources/http___${USER_}_${SECRET}_127_0_0_1-0123456789abcdef"  # the old naming

# --- plan: the deadline, for both servers ---------------------------------------------------------
for server in silent:$SILENT stall:$STALL; do
  name=${server%%:*} port=${server##*:}
  t0=$(now)
  rc=0
  timeout 60 "$PGC" plan -s "http://$USER_:$SECRET@127.0.0.1:$port/r.git" --state-dir "$STATE" --git-timeout 2 \
    >"$WORK/plan-$name.out" 2>"$WORK/plan-$name.err" || rc=$?
  took=$(elapsed "$t0" "$(now)")
  echo "figure: plan against the $name server, --git-timeout 2: exit $rc after $took s"
  [[ $rc -ne 0 && $rc -ne 124 ]] || fail "plan against the $name server: exit $rc"
  # The bound only tells "killed at a deadline" from "hangs" (the old code never returned): CI runs
  # this under ASan on 2 loaded cores, where the process's own start and exit take seconds. The
  # figure above is what docs/security.md reports (2.4–2.5 s unsanitized on a loaded machine).
  below "$took" 10.0 || fail "plan against the $name server took $took s (deadline 2 s + 0.25 s for the child)"
  grep -q "git http://127.0.0.1:$port/r.git: fetch: no answer within 2000 ms" "$WORK/plan-$name.err" ||
    fail "the error does not name the source and the deadline: $(cat "$WORK/plan-$name.err")"
  no_secret "$WORK/plan-$name.err" "$WORK/plan-$name.out"
done

# --- apply: recorded without credentials; the cache dir; SIGTERM ------------------------------------
rc=0
"$PGC" apply -s "http://$USER_:$SECRET@127.0.0.1:$SILENT/r.git" --state-dir "$STATE" --git-timeout 1 \
  >"$WORK/apply.out" 2>"$WORK/apply.err" || rc=$?
[[ $rc -eq 1 ]] || fail "apply against the silent server: exit $rc"
"$PGC" history --state-dir "$STATE" >"$WORK/history.out" 2>"$WORK/history.err"
grep -q "failure" "$WORK/history.out" || fail "the failed apply was not recorded"
grep -q "http://127.0.0.1:$SILENT/r.git" "$STATE/history.json" || fail "history does not name the source"
no_secret "$WORK/apply.err" "$WORK/apply.out" "$WORK/history.out" "$STATE"
ls "$STATE/sources" | grep -q "$SECRET" && fail "a cache directory is named after the credentials"
[[ ! -e "$STATE/sources/http___${USER_}_${SECRET}_127_0_0_1-0123456789abcdef" ]] || fail "the old cache dir was kept"
for dir in "$STATE/sources" "$STATE"/sources/*; do
  [[ $(stat -c %a "$dir") == 700 ]] || fail "$dir has mode $(stat -c %a "$dir"), not 700"
done
ls "$STATE/sources" | grep -Eqx '[0-9a-f]{64}' || fail "no cache directory named by a SHA-256: $(ls "$STATE/sources")"

# fetch_child PID: the pid of PID's git fetch child. It appears once the sanitized binary has
# started and forked: waited for (a busy CI machine once took longer than the 1.5 s slept here),
# up to 20 s — far below the 60 s git timeout — then half a second more, so that the child's
# request has reached the silent server before the signal.
fetch_child() {
  local child
  for _ in $(seq 1 200); do
    child=$(pgrep -f -- "__git-sync --parent $1" || true)
    if [[ -n $child ]]; then sleep 0.5; echo "$child"; return 0; fi
    sleep 0.1
  done
  return 1
}

"$PGC" apply -s "http://$USER_:$SECRET@127.0.0.1:$SILENT/r.git" --state-dir "$STATE" --git-timeout 60 \
  >"$WORK/apply-term.out" 2>"$WORK/apply-term.err" &
APPLY=$!
PIDS+=($APPLY)
CHILD=$(fetch_child "$APPLY") || fail "apply runs no fetch child (none within 20 s)"
t0=$(now)
kill -TERM "$APPLY"
rc=0
wait "$APPLY" || rc=$?
took=$(elapsed "$t0" "$(now)")
echo "figure: apply, SIGTERM during a hanging fetch: exit $rc after $took s"
[[ $rc -eq 1 ]] || fail "apply on SIGTERM: exit $rc, not 1"
below "$took" 5.0 || fail "apply took $took s to stop on SIGTERM"  # generous under sanitizers; the figure is the measure
alive "$CHILD" && fail "the fetch child $CHILD outlived apply"
"$PGC" history --state-dir "$STATE" -o json >"$WORK/history.json.out"
python3 - "$WORK/history.json.out" <<'PY' || fail "apply's SIGTERM was not recorded as interrupted"
import json, sys
runs = json.load(open(sys.argv[1]))["runs"]
sys.exit(0 if runs[-1]["result"] == "interrupted" else 1)
PY
no_secret "$WORK/apply-term.err" "$STATE/history.json"

# --- plan on SIGTERM: it dies, and its fetch child with it -------------------------------------------
"$PGC" plan -s "http://127.0.0.1:$SILENT/r.git" --state-dir "$STATE" --git-timeout 60 >/dev/null 2>&1 &
PLAN=$!
PIDS+=($PLAN)
CHILD=$(fetch_child "$PLAN") || fail "plan runs no fetch child (none within 20 s)"
t0=$(now)
kill -TERM "$PLAN"
wait "$PLAN" || true
plan_took=$(elapsed "$t0" "$(now)")
polls=0
while alive "$CHILD" && ((polls++ < 100)); do sleep 0.01; done
took=$(elapsed "$t0" "$(now)")
echo "figure: plan, SIGTERM during a hanging fetch: plan gone after $plan_took s"
alive "$CHILD" && fail "the fetch child $CHILD outlived plan"
echo "figure: plan, SIGTERM during a hanging fetch: its fetch child gone $polls x 10 ms after plan exited"

# --- credentials from a file, never echoed -----------------------------------------------------------
start_server basic-auth auth "$WORK/auth.log"
AUTH=$PORT
CREDS=$WORK/git-credentials
printf '# tokens\nhttp://%s:filetoken@127.0.0.1:%s\n' "$USER_" "$AUTH" >"$CREDS"
chmod 600 "$CREDS"
rc=0
"$PGC" plan -s "http://127.0.0.1:$AUTH/r.git" --state-dir "$STATE" --git-timeout 5 --git-credentials-file "$CREDS" \
  >/dev/null 2>"$WORK/creds.err" || rc=$?
[[ $rc -eq 1 ]] || fail "plan against the 401 server: exit $rc"
grep -qx "$USER_:filetoken" "$WORK/auth.log" || fail "the server did not get the file's credentials"
grep -q "authentication with the credentials from $CREDS line 2 was refused" "$WORK/creds.err" ||
  fail "the refusal does not name the credentials' origin: $(cat "$WORK/creds.err")"
no_secret "$WORK/creds.err"
: >"$WORK/auth.log"
rc=0
PGCONVERGE_GIT_CREDENTIALS_FILE=$CREDS "$PGC" plan -s "http://127.0.0.1:$AUTH/r.git" --state-dir "$STATE" \
  --git-timeout 5 >/dev/null 2>"$WORK/creds-env.err" || rc=$?
grep -qx "$USER_:filetoken" "$WORK/auth.log" || fail "\$PGCONVERGE_GIT_CREDENTIALS_FILE was not used"
chmod 644 "$CREDS"
: >"$WORK/auth.log"
rc=0
"$PGC" plan -s "http://127.0.0.1:$AUTH/r.git" --state-dir "$STATE" --git-timeout 5 --git-credentials-file "$CREDS" \
  >/dev/null 2>"$WORK/creds-open.err" || rc=$?
[[ $rc -eq 1 ]] || fail "a world-readable credentials file: exit $rc"
grep -q "has mode 0644" "$WORK/creds-open.err" || fail "no refusal of the file's mode: $(cat "$WORK/creds-open.err")"
[[ ! -s $WORK/auth.log ]] || fail "credentials from a world-readable file were sent"
no_secret "$WORK/creds-open.err"

# --- serve: /healthz says stuck, SIGTERM within a second --------------------------------------------
HTTP_PORT=$(python3 "$HERE/free_port.py")
cat >"$WORK/serve.yaml" <<YAML
source: {url: "http://$USER_:$SECRET@127.0.0.1:$SILENT/r.git", fetchTimeout: 60s}
stateDir: "$WORK/serve-state"
interval: 1h
resync: 1h
jitter: 0
stuckAfter: 2s
listen: 127.0.0.1:$HTTP_PORT
YAML
"$PGC" serve --config "$WORK/serve.yaml" >"$WORK/serve.log" 2>&1 &
SERVE=$!
PIDS+=($SERVE)
code=""
for _ in $(seq 50); do
  code=$(curl -s -o "$WORK/healthz" -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/healthz" || true)
  [[ $code == 200 ]] && break
  sleep 0.1
done
[[ $code == 200 ]] || fail "/healthz did not answer 200 while the first run started (got $code)"
stuck=""
for _ in $(seq 60); do
  code=$(curl -s -o "$WORK/healthz" -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/healthz" || true)
  if [[ $code == 503 ]]; then stuck=yes; break; fi
  sleep 0.1
done
[[ -n $stuck ]] || fail "/healthz never reported the stuck run"
grep -q "^stuck: a run has been in progress for" "$WORK/healthz" || fail "/healthz gave no reason: $(cat "$WORK/healthz")"
echo "figure: serve /healthz: $(cat "$WORK/healthz")"
CHILD=$(pgrep -f -- "__git-sync --parent $SERVE" || true)
[[ -n $CHILD ]] || fail "serve runs no fetch child"
t0=$(now)
kill -TERM "$SERVE"
rc=0
wait "$SERVE" || rc=$?
took=$(elapsed "$t0" "$(now)")
echo "figure: serve, SIGTERM during a hanging fetch: exit $rc after $took s"
[[ $rc -eq 0 ]] || fail "serve exited $rc on SIGTERM"
below "$took" 5.0 || fail "serve took $took s to stop on SIGTERM"  # generous under sanitizers; the figure is the measure
alive "$CHILD" && fail "the fetch child $CHILD outlived serve"
no_secret "$WORK/serve.log" "$WORK/serve-state"

# --- a damaged history: `pgconverge history` warns and moves it aside ------------------------------
printf '{"runs": [{"result": "success", "durationSeconds": "3s"}]}' >"$STATE/history.json"
rc=0
"$PGC" history --state-dir "$STATE" >/dev/null 2>"$WORK/damaged.err" || rc=$?
[[ $rc -eq 1 ]] || fail "history on a damaged file: exit $rc, not 1"
grep -q "runs\[0\].durationSeconds must be a number" "$WORK/damaged.err" || fail "no reason: $(cat "$WORK/damaged.err")"
grep -q "moved aside to $STATE/history.json.damaged-" "$WORK/damaged.err" || fail "not moved aside: $(cat "$WORK/damaged.err")"
ls "$STATE"/history.json.damaged-* >/dev/null || fail "no damaged copy kept"
"$PGC" history --state-dir "$STATE" | grep -q "No runs recorded yet" || fail "history after the move is not empty"
echo "PASS"

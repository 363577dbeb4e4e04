#!/usr/bin/env bash
# GitOps end to end on the lab: manifests in a bare git repository; `pgconverge serve` converges
# a cluster when a signed webhook arrives (and not when the signature is wrong), when polling
# sees a new revision, and the post-receive hook converges on `git push`. A malformed manifest is
# reported with file:line and changes nothing; two concurrent applies never interleave;
# /metrics passes promtool; SIGTERM stops the daemon cleanly.
source "$(dirname "$0")/lib.sh"
command -v promtool >/dev/null || skip "missing promtool (Debian package prometheus; run scripts/install-deps)"
command -v openssl >/dev/null || skip "missing openssl"
lab_up 3

git_() { git -c user.name=pgc-test -c user.email=pgc@test "$@"; }
BARE=$WORK/clusters.git
CLONE=$WORK/clone
git init -q --bare -b main "$BARE"
git init -q -b main "$CLONE"
git -C "$CLONE" remote add origin "$BARE"
CLUSTER_DIR=$CLONE/clusters   # write_cluster writes here; pgc status reads the same files
mkdir -p "$CLUSTER_DIR"
commit_push() { git_ -C "$CLONE" add -A && git_ -C "$CLONE" commit -qm "$1" && git_ -C "$CLONE" push -q origin main 2>&1; }
head_sha() { git -C "$CLONE" rev-parse HEAD; }

SECRET_FILE=$WORK/github.secret
head -c 32 /dev/urandom | base64 | tr -d '\n=' >"$SECRET_FILE"
chmod 600 "$SECRET_FILE"
PORT=9810
serve_config() { # INTERVAL
  cat >"$WORK/serve.yaml" <<YAML
source: {url: "file://$BARE", ref: main, path: clusters, extra: ["$LAB_MANIFESTS"]}
stateDir: "$STATE"
ssh: {identity: "$LAB_SSH_KEY", knownHosts: "$LAB_KNOWN_HOSTS"}
interval: $1
resync: 1h
jitter: 0
waitTimeout: 120s
listen: 127.0.0.1:$PORT
webhooks:
  - {name: github, kind: github, path: /hooks/github, secretFile: "$SECRET_FILE"}
YAML
}
SERVE_PID=""
start_serve() {
  "$LAB" run "$PGC" serve --config "$WORK/serve.yaml" >>"$WORK/serve.log" 2>&1 &
  SERVE_PID=$!
  for _ in $(seq 50); do curl_ -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return; sleep 0.2; done
  cat "$WORK/serve.log"; fail "serve did not come up"
}
stop_serve() {
  [[ -n $SERVE_PID ]] || return 0
  kill -TERM "$SERVE_PID"
  local rc=0
  wait "$SERVE_PID" || rc=$?
  SERVE_PID=""
  [[ $rc -eq 0 ]] || { cat "$WORK/serve.log"; fail "serve exited $rc after SIGTERM"; }
}
on_exit() {
  local rc=$?
  [[ -z $SERVE_PID ]] || kill -KILL "$SERVE_PID" 2>/dev/null || true
  (exit $rc)
  cleanup
}
trap on_exit EXIT
curl_() { "$LAB" run curl --max-time 10 "$@"; }
# hook BODY [SECRET]: POSTs a GitHub-style push delivery; prints the HTTP status.
hook() {
  local body=$1 secret=${2-$(cat "$SECRET_FILE")} sig
  sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1)
  curl_ -s -o /dev/null -w '%{http_code}' -H "X-GitHub-Event: push" -H "X-GitHub-Delivery: $RANDOM-$RANDOM" \
    -H "X-Hub-Signature-256: sha256=$sig" --data-binary "$body" "http://127.0.0.1:$PORT/hooks/github"
}
runs() { pgc_history | jq '.runs | length'; }
pgc_history() { "$PGC" history --state-dir "$STATE" -o json; }
# wait_roles CLUSTER WANT SECONDS: until status shows WANT; prints the seconds it took.
wait_roles() {
  local start=$SECONDS got=""
  while ((SECONDS - start < $3)); do
    got=$(role_counts "$1" 2>/dev/null || true)
    [[ $got == "$2" ]] && { echo $((SECONDS - start)); return 0; }
    sleep 0.5
  done
  echo "roles: '$got', want '$2'" >&2
  return 1
}
ms_now() { date +%s%3N; }
# expect_recorded_success TRIGGER: the history's newest run is TRIGGER's successful run of HEAD.
expect_recorded_success() {
  wait_recorded
  pgc_history | jq -e --arg sha "$(head_sha)" --arg trigger "$1" \
    '.runs[-1] | .revision.sha == $sha and .trigger == $trigger and .result == "success"' >/dev/null ||
    fail "history does not record the $1 run of $(head_sha): $(pgc_history | jq -c '.runs[-1] | {trigger, result, revision: .revision.shortSha}')"
}
# wait_recorded: until the history's newest run is for the clone's HEAD (runs are recorded once
# verified, a moment after status already shows the change).
wait_recorded() {
  for _ in $(seq 120); do
    pgc_history | jq -e --arg sha "$(head_sha)" '.runs[-1].revision.sha == $sha' >/dev/null && return 0
    sleep 0.5
  done
  fail "no run recorded for $(head_sha)"
}

step "first revision: sync, 3 instances; serve (webhooks only, no polling to speak of)"
write_cluster gitops sync 3 1
commit_push "gitops: sync" >/dev/null
serve_config 1h
start_serve
# The first poll runs at start: it bootstraps the cluster.
wait_roles gitops "Leader:1 Replica:1 Sync Standby:1" 180 >/dev/null || { cat "$WORK/serve.log"; fail "bootstrap via serve"; }
check_replication gitops 1
echo "ok: serve bootstrapped revision $(head_sha | cut -c1-7)"

step "a webhook with a bad signature is refused and triggers nothing"
write_cluster gitops strict-sync-all 3 1
commit_push "gitops: strict-sync-all" >/dev/null
before=$(runs)
[[ $(hook '{"ref":"refs/heads/main"}' wrong-secret-wrong-secret) == 401 ]] || fail "bad signature was not answered 401"
[[ $(hook '{"ref":"refs/heads/main"}' "") == 401 ]] || fail "a signature made with an empty key was not answered 401"
[[ $(curl_ -s -o /dev/null -w '%{http_code}' --data-binary '{}' "http://127.0.0.1:$PORT/hooks/github") == 401 ]] ||
  fail "an unsigned delivery was not answered 401"
sleep 3
[[ $(runs) == "$before" ]] || fail "a run happened after a bad signature"
[[ $(role_counts gitops) == "Leader:1 Replica:1 Sync Standby:1" ]] || fail "the cluster changed without a valid webhook"
echo "ok: 401, no run, cluster unchanged"

step "a signed webhook converges the pushed revision (sync → strict-sync-all)"
t0=$(ms_now)
[[ $(hook '{"ref":"refs/heads/main"}') == 202 ]] || fail "a valid webhook was not accepted"
wait_roles gitops "Leader:1 Sync Standby:2" 120 >/dev/null || { tail -40 "$WORK/serve.log"; fail "webhook did not converge"; }
t1=$(ms_now)
check_replication gitops 2
expect_recorded_success webhook:github
pgc_history | jq -e --arg sha "$(head_sha)" '.runs[-1].clusters[0] | .lastAppliedRevision == $sha and (.conditions[] | select(.type=="Ready") | .status) == "True"' >/dev/null ||
  fail "the cluster record lacks Ready/lastAppliedRevision"
echo "ok: push→converged via webhook in $((t1 - t0)) ms (figure: webhook latency)"

step "a malformed manifest is reported with file:line and changes nothing"
printf 'apiVersion: stackgres.io/v1\nkind: SGCluster\nmetadata: {name: broken}\nspec:\n  instances: [oops\n' >"$CLUSTER_DIR/broken.yaml"
commit_push "broken manifest" >/dev/null
[[ $(hook '{"ref":"refs/heads/main"}') == 202 ]] || fail "webhook for the broken revision"
wait_recorded
pgc_history | jq -e '.runs[-1].result == "failure"' >/dev/null || fail "the broken revision was not recorded as a failure"
pgc_history | jq -r '.runs[-1].errors[]' | grep -E "@[0-9a-f]{7}:clusters/broken.yaml:[0-9]+:[0-9]+: YAML syntax error" ||
  fail "no file:line error for broken.yaml: $(pgc_history | jq -c '.runs[-1].errors')"
grep -qE "clusters/broken.yaml:[0-9]+:[0-9]+: YAML syntax error" "$WORK/serve.log" || fail "the daemon's log does not name broken.yaml"
rm "$CLUSTER_DIR/broken.yaml"
[[ $(role_counts gitops) == "Leader:1 Sync Standby:2" ]] || fail "the cluster changed after a malformed push"
echo "ok: failure recorded with file:line, cluster still strict-sync-all"

step "/metrics passes promtool and carries the run"
curl_ -fsS "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics"
promtool check metrics <"$WORK/metrics" || { cat "$WORK/metrics"; fail "promtool rejected /metrics"; }
grep -q '^pgconverge_cluster_ready{namespace="default",cluster="gitops"} 1' "$WORK/metrics" || fail "cluster_ready missing"
grep -q '^pgconverge_cluster_sync_standbys_observed{namespace="default",cluster="gitops"} 2' "$WORK/metrics" || fail "sync observed missing"
grep -q '^pgconverge_webhook_requests_total{receiver="github",status="401"} 3' "$WORK/metrics" || fail "401s not counted"
grep -q '^pgconverge_reconcile_total{result="failure"} 1' "$WORK/metrics" || fail "failure not counted"
echo "ok: promtool check metrics"

step "SIGTERM stops the daemon cleanly; RSS while idle"
rss=$(awk '/^VmRSS/{print $2}' "/proc/$SERVE_PID/status")
ticks() { awk '{print $14 + $15}' "/proc/$SERVE_PID/stat"; }
c0=$(ticks); sleep 5; c1=$(ticks)
echo "serve idle: RSS $((rss / 1024)) MiB, CPU $(((c1 - c0) * 1000 / $(getconf CLK_TCK))) ms over 5 s (figure)"
stop_serve
grep -q "^stopped" "$WORK/serve.log" || fail "no 'stopped' line in the log"

# back_to_sync: commit and push sync (serve stopped, no hook yet) and apply it by hand.
back_to_sync() {
  write_cluster gitops sync 3 1
  commit_push "gitops: back to sync" >/dev/null
  expect_exit 0 pgc apply --progress quiet >/dev/null
  [[ $(role_counts gitops) == "Leader:1 Replica:1 Sync Standby:1" ]] || fail "manual apply back to sync"
}

step "polling alone: a new revision converges without any webhook (sync → strict-sync-all)"
back_to_sync
serve_config 2s
start_serve
sleep 1  # its first poll sees the revision already applied
write_cluster gitops strict-sync-all 3 1
commit_push "gitops: strict-sync-all, by polling" >/dev/null
t0=$(ms_now)
wait_roles gitops "Leader:1 Sync Standby:2" 120 >/dev/null || { tail -40 "$WORK/serve.log"; fail "polling did not converge"; }
t1=$(ms_now)
check_replication gitops 2
expect_recorded_success poll
echo "ok: push→converged by polling (interval 2s) in $((t1 - t0)) ms (figure)"
stop_serve

step "post-receive hook: git push converges (sync → strict-sync-all)"
back_to_sync
install -m 755 "$ROOT/examples/git-hooks/post-receive" "$BARE/hooks/post-receive"
cat >"$WORK/hook.env" <<ENV
PGCONVERGE_BIN=$PGC
PGCONVERGE_ARGS="--path clusters -s $LAB_MANIFESTS --ssh-identity $LAB_SSH_KEY --known-hosts $LAB_KNOWN_HOSTS --state-dir $STATE"
ENV
write_cluster gitops strict-sync-all 3 1
git_ -C "$CLONE" add -A && git_ -C "$CLONE" commit -qm "gitops: strict-sync-all, by the hook"
t0=$(ms_now)
# The push runs the hook in the client namespace, as an admin host would.
"$LAB" run bash -c "set -a; . '$WORK/hook.env'; set +a; git -C '$CLONE' push -q origin main" \
  >"$WORK/push.log" 2>&1 || { cat "$WORK/push.log"; fail "git push failed"; }
t1=$(ms_now)
grep -q "cluster gitops: converged" "$WORK/push.log" || { cat "$WORK/push.log"; fail "the hook did not report convergence"; }
[[ $(role_counts gitops) == "Leader:1 Sync Standby:2" ]] || fail "strict-sync-all not applied by the hook: $(role_counts gitops)"
check_replication gitops 2
expect_recorded_success post-receive
echo "ok: git push → converged by the hook in $((t1 - t0)) ms (figure)"

step "two concurrent applies never interleave"
pgc apply --progress quiet >"$WORK/a1" 2>&1 & p1=$!
pgc apply --progress quiet >"$WORK/a2" 2>&1 & p2=$!
wait $p1 || { cat "$WORK/a1"; fail "first concurrent apply failed"; }
wait $p2 || { cat "$WORK/a2"; fail "second concurrent apply failed"; }
pgc_history | python3 -c '
import json, sys, datetime
runs = json.load(sys.stdin)["runs"][-2:]
t = lambda r: datetime.datetime.fromisoformat(r["startedAt"].replace("Z", "+00:00")).timestamp()
(a, b) = sorted(runs, key=t)
end_a = t(a) + a["durationSeconds"]
print("run 1: %s + %.2fs, run 2 starts %.2fs after it ended" % (a["startedAt"], a["durationSeconds"], t(b) - end_a))
sys.exit(0 if t(b) >= end_a - 0.01 else 1)
' || fail "the two runs overlapped"
step "suspend: the annotation stops apply; plan and status still report the drift"
write_cluster gitops sync 3 1
sed -i "s|annotations: {pgconverge.io/client-cidrs: $LAB_CLIENT_ADDRESS/32}|annotations: {pgconverge.io/client-cidrs: $LAB_CLIENT_ADDRESS/32, pgconverge.io/suspend: \"true\"}|" "$CLUSTER_DIR/cluster.yaml"
grep -q 'pgconverge.io/suspend: "true"' "$CLUSTER_DIR/cluster.yaml" || fail "could not annotate the cluster"
git_ -C "$CLONE" add -A && git_ -C "$CLONE" commit -qm "gitops: sync, suspended"
"$LAB" run bash -c "set -a; . '$WORK/hook.env'; set +a; git -C '$CLONE' push -q origin main" >"$WORK/push.log" 2>&1
grep -q "cluster gitops: suspended (pgconverge.io/suspend), [1-9][0-9]* change(s) not applied" "$WORK/push.log" ||
  { cat "$WORK/push.log"; fail "the hook's apply did not report the suspension"; }
[[ $(role_counts gitops) == "Leader:1 Sync Standby:2" ]] || fail "a suspended cluster was changed: $(role_counts gitops)"
expect_exit 2 pgc plan >/dev/null
grep -q "cluster default/gitops  (suspended: apply leaves it alone)" "$WORK/out" || fail "plan does not mark the cluster suspended"
status_json gitops | jq -e '.clusters[0] | .suspended and ((.conditions[] | select(.type=="Ready") | .reason) == "Suspended")' >/dev/null ||
  fail "status does not show Ready=Unknown (Suspended)"
echo "ok: suspended: nothing applied, plan exit 2 with the drift, Ready=Unknown (Suspended)"
step "no secret in any output of the whole run; secret files are 0600 here, 0640 root:postgres on hosts"
ls "$STATE"/secrets/*.json >/dev/null || fail "no secrets in the state dir"
for f in "$STATE"/secrets/*.json; do
  [[ $(stat -c %a "$f") == 600 ]] || fail "$f is mode $(stat -c %a "$f"), not 600"
  for secret in $(jq -r '.[]' "$f"); do
    [[ ${#secret} -ge 16 ]] || continue
    # Everything printed or logged: serve's log, the hook's output, apply/plan/status output, history.
    if grep -rlF -- "$secret" "$WORK"/*.log "$WORK"/out "$WORK"/err "$WORK"/a1 "$WORK"/a2 "$STATE/history.json" 2>/dev/null; then
      fail "a generated secret was printed (files above)"
    fi
  done
done
for i in 1 2 3; do
  [[ $("$LAB" ssh "pg-$i" stat -c '%a %U:%G' /etc/patroni/15-gitops.yml) == "640 root:postgres" ]] ||
    fail "pg-$i: /etc/patroni/15-gitops.yml is not 0640 root:postgres"
done
echo "ok: $(jq -r '.[]' "$STATE"/secrets/*.json | wc -l) secrets, none in any output"
echo PASS

#!/usr/bin/env bash
# Ownership on the lab: two `pgconverge serve` instances (own state dirs and ports) poll one git
# repository with two single-instance clusters and share them through the lab's etcd (leaseTtl
# 4s, interval 1s). Each cluster's owner key names exactly one instance and only that instance
# applies it; the owner of alpha is SIGKILLed in the middle of applying a change to alpha, and the
# other instance takes alpha over once the lease expires and converges the change. From both
# event logs: the intervals during which each instance acted on a cluster never overlap.
source "$(dirname "$0")/lib.sh"
lab_up 2
[[ -n ${LAB_ETCD:-} ]] || fail "the lab has no etcd"

git_() { git -c user.name=pgc-test -c user.email=pgc@test "$@"; }
BARE=$WORK/clusters.git
CLONE=$WORK/clone
git init -q --bare -b main "$BARE"
git init -q -b main "$CLONE"
git -C "$CLONE" remote add origin "$BARE"
mkdir -p "$CLONE/clusters" "$WORK/hosts"
commit_push() { git_ -C "$CLONE" add -A && git_ -C "$CLONE" commit -qm "$1" && git_ -C "$CLONE" push -q origin main 2>&1; }
# The lab's Hosts with one more label each (ownership/host: pg-N), so that each cluster gets its own host.
awk '/^  name: pg-/{n=$2} /^  labels:/{sub(/\}/, ", ownership/host: " n "}")} {print}' \
  "$LAB_MANIFESTS/hosts.yaml" >"$WORK/hosts/hosts.yaml"
cp "$LAB_MANIFESTS/etcd.yaml" "$WORK/hosts/"
read -r -a ADDR <<<"$LAB_HOST_ADDRESSES"

# cluster NAME HOST MAX_CONNECTIONS: a single-instance async cluster on HOST.
cluster() {
  cat >"$CLONE/clusters/$1.yaml" <<YAML
apiVersion: stackgres.io/v1
kind: SGPostgresConfig
metadata: {name: $1-config}
spec:
  postgresVersion: "15"
  postgresql.conf: {max_connections: "$3"}
---
apiVersion: stackgres.io/v1
kind: SGCluster
metadata:
  name: $1
  annotations: {pgconverge.io/client-cidrs: $LAB_CLIENT_ADDRESS/32}
spec:
  postgres: {version: "15"}
  instances: 1
  configurations:
    sgPostgresConfig: $1-config
    patroni: {dynamicConfig: {ttl: 10, loop_wait: 1, retry_timeout: 4}}
  pods: {scheduling: {nodeSelector: {ownership/host: $2}}}
  replication: {mode: async}
YAML
}

declare -A PID PORT=([a]=9831 [b]=9832)
serve_config() { # ID
  cat >"$WORK/serve-$1.yaml" <<YAML
source: {url: "file://$BARE", ref: main, path: clusters, extra: ["$WORK/hosts"]}
stateDir: "$WORK/state-$1"
ssh: {identity: "$LAB_SSH_KEY", knownHosts: "$LAB_KNOWN_HOSTS"}
interval: 1s
resync: 1h
jitter: 0
waitTimeout: 60s
listen: 127.0.0.1:${PORT[$1]}
logFormat: json
ownership: {etcd: ["$LAB_ETCD"], instance: serve-$1, leaseTtl: 4s}
YAML
}
start_serve() { # ID
  serve_config "$1"
  "$LAB" run "$PGC" serve --config "$WORK/serve-$1.yaml" >>"$WORK/serve-$1.log" 2>&1 &
  PID[$1]=$!
  for _ in $(seq 50); do "$LAB" run curl -fs --max-time 2 "http://127.0.0.1:${PORT[$1]}/healthz" >/dev/null 2>&1 && return; sleep 0.2; done
  cat "$WORK/serve-$1.log"; fail "serve $1 did not come up"
}
on_exit() {
  local rc=$?
  for id in a b; do [[ -z ${PID[$id]:-} ]] || kill -KILL "${PID[$id]}" 2>/dev/null || true; done
  if [[ $rc -ne 0 ]]; then for id in a b; do echo "--- serve-$id.log (tail)"; tail -30 "$WORK/serve-$id.log" 2>/dev/null || true; done; fi
  (exit $rc)
  cleanup
}
trap on_exit EXIT
owner() { "$LAB" run env ETCDCTL_API=3 etcdctl --endpoints "$LAB_ETCD" get "/pgconverge/owners/default/$1" --print-value-only; }
# events ID EVENT: that instance's events of that kind, one JSON object a line.
events() { jq -Rc --arg e "$2" 'fromjson? | select(.event == $e)' "$WORK/serve-$1.log"; }
wait_for() { # SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2 start=$SECONDS; shift 2
  until "$@"; do ((SECONDS - start < limit)) || fail "timed out after ${limit}s waiting for $what"; sleep 0.2; done
}
ms_now() { date +%s%3N; }
max_connections() { # CLUSTER ADDRESS: as the server reports it, with the secret of whichever instance kept it
  local f
  f=$(ls "$WORK"/state-?/secrets/default."$1".json 2>/dev/null | head -1)
  [[ -n $f ]] || return 1
  "$LAB" run env PGPASSWORD="$(jq -r .superuser "$f")" PGCONNECT_TIMEOUT=3 \
    timeout 5 psql -h "$2" -U postgres -d postgres -XAtqc "show max_connections" 2>/dev/null
}
is_max() { [[ $(max_connections "$1" "$2" || true) == "$3" ]]; }

step "alpha on pg-1; serve a takes it; serve b starts and leaves it alone"
cluster alpha pg-1 100
commit_push "alpha" >/dev/null
start_serve a
wait_for 60 "alpha bootstrapped by serve a" is_max alpha "${ADDR[0]}" 100
[[ $(owner alpha) == serve-a ]] || fail "alpha's owner key is '$(owner alpha)', want serve-a"
start_serve b
wait_for 20 "serve b to see alpha owned elsewhere" \
  bash -c "jq -Rc 'fromjson? | select(.event==\"cluster-owned-elsewhere\" and .cluster==\"default/alpha\" and .owner==\"serve-a\")' '$WORK/serve-b.log' | grep -q ."
echo "ok: alpha owned by serve-a; serve-b logged cluster-owned-elsewhere"

step "beta on pg-2: one of the two instances takes it, the other leaves it"
cluster beta pg-2 100
commit_push "beta" >/dev/null
wait_for 60 "beta bootstrapped" is_max beta "${ADDR[1]}" 100
beta_owner=$(owner beta)
[[ $beta_owner == serve-a || $beta_owner == serve-b ]] || fail "beta's owner key is '$beta_owner'"
other=serve-a; [[ $beta_owner == serve-a ]] && other=serve-b
[[ -z $(events "${other#serve-}" cluster-apply-start | jq -c 'select(.cluster=="beta")') ]] ||
  fail "$other acted on beta, owned by $beta_owner"
echo "ok: beta owned by $beta_owner only"

step "a change to alpha; serve a is SIGKILLed while applying it; serve b takes over and converges it"
# The kill lands as soon as serve a logs that it starts applying alpha (polled every 20 ms).
START_A='"cluster":"alpha","event":"cluster-apply-start"'
starts_before=$(grep -c "$START_A" "$WORK/serve-a.log" || true)
cluster alpha pg-1 120
commit_push "alpha: max_connections 120" >/dev/null
start=$SECONDS
until (($(grep -c "$START_A" "$WORK/serve-a.log" || true) > starts_before)); do
  ((SECONDS - start < 20)) || fail "serve a did not start applying alpha"
  sleep 0.02
done
kill -KILL "${PID[a]}"
killed_ms=$(ms_now)
wait "${PID[a]}" 2>/dev/null || true
PID[a]=""
# starts_before applies of alpha had ended before this one: is this one's end missing?
if [[ $(grep -c '"cluster":"alpha","event":"cluster-apply-end"' "$WORK/serve-a.log" || true) == "$starts_before" ]]
then echo "serve a was killed in the middle of its apply of alpha"
else echo "note: serve a finished its apply of alpha before the kill landed"; fi
wait_for 30 "serve b to take alpha over" bash -c "[[ \$('$LAB' run env ETCDCTL_API=3 etcdctl --endpoints '$LAB_ETCD' get /pgconverge/owners/default/alpha --print-value-only) == serve-b ]]"
taken_ms=$(ms_now)
wait_for 60 "alpha converged by serve b (max_connections 120)" is_max alpha "${ADDR[0]}" 120
converged_ms=$(ms_now)
first_b=$(events b cluster-apply-start | jq -s -r '[.[] | select(.cluster=="alpha") | .at_ms | tonumber] | min // empty')
[[ -n $first_b ]] || fail "serve b never started applying alpha"
echo "ok: kill → owner key serve-b in $((taken_ms - killed_ms)) ms, → serve-b applying alpha in $((first_b - killed_ms)) ms, → converged in $((converged_ms - killed_ms)) ms (leaseTtl 4s, interval 1s)"
((first_b > killed_ms)) || fail "serve b started on alpha before serve a was killed"

step "the instances' apply intervals on each cluster never overlap"
# Intervals [start, end] per instance from cluster-apply-start/-end; an apply cut short by the
# kill ends at the kill; one still going (serve b) ends now.
intervals() { # CLUSTER
  for id in a b; do
    jq -Rc --arg c "$1" --arg id "$id" 'fromjson? | select((.event=="cluster-apply-start" or .event=="cluster-apply-end") and .cluster==$c) | {id: $id, e: .event, at: (.at_ms | tonumber)}' "$WORK/serve-$id.log"
  done | jq -s -c --argjson killed "$killed_ms" --argjson now "$(ms_now)" '
    group_by(.id) | map(
      reduce .[] as $x ({open: null, out: []};
        if $x.e == "cluster-apply-start" then .open = $x
        else .out += [{id: $x.id, from: .open.at, to: $x.at}] | .open = null end)
      | .out + (if .open then [{id: .open.id, from: .open.at, to: (if .open.id == "a" then $killed else $now end)}] else [] end))
    | add // [] | sort_by(.from)'
}
for c in alpha beta; do
  iv=$(intervals $c)
  echo "$c: $(jq -c 'group_by(.id) | map({(.[0].id): length}) | add' <<<"$iv") apply intervals"
  jq -e 'all(.[]; .from <= .to) and ([range(1; length) as $i | .[$i].from >= .[$i-1].to] | all)' <<<"$iv" >/dev/null ||
    fail "overlapping apply intervals on $c: $iv"
done
[[ $(intervals alpha | jq '[.[].id] | unique | length') == 2 ]] || fail "alpha was not applied by both instances in turn"
echo "ok: no overlap"

step "serve b stops cleanly and revokes its lease: the owner keys go at once"
kill -TERM "${PID[b]}"
rc=0; wait "${PID[b]}" || rc=$?
PID[b]=""
[[ $rc -eq 0 ]] || fail "serve b exited $rc after SIGTERM"
events b lease-revoked | grep -q . || fail "serve b did not revoke its lease"
[[ -z $(owner alpha) && -z $(owner beta) ]] || fail "owner keys left after the revoke: alpha='$(owner alpha)' beta='$(owner beta)'"
echo "ok: lease revoked, no owner keys left"

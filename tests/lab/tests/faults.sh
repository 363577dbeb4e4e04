#!/usr/bin/env bash
# Fault helpers: `lab cut` makes a host unreachable and `lab restore` brings it back; `lab etcd
# stop` makes etcd unreachable and `lab etcd start` restores it (with its data).
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

step "up 2"
lab_up 2

reach() { # FROM(client|pg-N) IP PORT → 0 if a TCP connection opens within 2 s
  local script="exec 3<>/dev/tcp/$2/$3"
  if [[ $1 == client ]]; then
    "$LAB" run timeout 2 bash -c "$script" 2>/dev/null
  else
    "$LAB" exec "$1" timeout 2 bash -c "$script" 2>/dev/null
  fi
}

step "cut / restore"
reach client 10.250.0.11 22 || fail "pg-1 unreachable before the cut"
"$LAB" cut pg-1
reach client 10.250.0.11 22 && fail "pg-1 reachable from the client namespace after cut"
SSH_TIMEOUT=2 expect_rc 255 lab_raw_ssh "$LAB_KNOWN_HOSTS" 10.250.0.11 true
reach pg-2 10.250.0.11 22 && fail "pg-1 reachable from pg-2 after cut"
reach client 10.250.0.12 22 || fail "pg-2 became unreachable when pg-1 was cut"
[[ $("$LAB" exec pg-1 hostname) == pg-1 ]] || fail "lab exec into a cut host failed"
"$LAB" status | grep -E '^pg-1 .* down +NO ANSWER' >/dev/null || fail "status does not show pg-1 cut: $("$LAB" status)"
ok "pg-1 is unreachable from the client and from pg-2; pg-2 unaffected; lab exec still works"
"$LAB" restore pg-1
reach client 10.250.0.11 22 || fail "pg-1 unreachable after restore"
[[ $(lab_raw_ssh "$LAB_KNOWN_HOSTS" 10.250.0.11 hostname) == pg-1 ]] || fail "ssh to pg-1 after restore"
reach pg-2 10.250.0.11 22 || fail "pg-1 unreachable from pg-2 after restore"
ok "restore: pg-1 answers again"

step "etcd stop / start"
etcdctl_() { "$LAB" run env ETCDCTL_API=3 etcdctl --endpoints="$LAB_ETCD" --dial-timeout=2s --command-timeout=3s "$@"; }
etcdctl_ put /pgclab/faults before-stop >/dev/null || fail "etcd put"
etcdctl_ endpoint health >/dev/null 2>&1 || fail "etcd not healthy before stop"
"$LAB" etcd stop
etcdctl_ endpoint health >/dev/null 2>&1 && fail "etcd still healthy after 'lab etcd stop'"
reach client 10.250.0.2 2379 && fail "etcd port still open after stop"
"$LAB" run curl -s --max-time 2 "http://$LAB_ETCD/health" >/dev/null && fail "etcd still answers HTTP after stop"
ok "etcd unreachable after 'lab etcd stop'"
"$LAB" etcd start
etcdctl_ endpoint health >/dev/null 2>&1 || fail "etcd not healthy after start"
[[ $(etcdctl_ get --print-value-only /pgclab/faults) == before-stop ]] || fail "etcd lost its data over stop/start"
ok "etcd back after 'lab etcd start', data kept"

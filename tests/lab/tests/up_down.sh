#!/usr/bin/env bash
# The lab comes up in seconds, `up` is idempotent and grows the lab, `down` leaves nothing behind
# (checked, not assumed) — also after a crashed `up` — and a second `up` after `down` works.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

ms_since() { echo $(((${EPOCHREALTIME/./} - $1) / 1000)); }

step "up 3 from nothing"
"$LAB" down >/dev/null 2>&1 || true
assert_clean
t0=${EPOCHREALTIME/./}
"$LAB" up 3
up3_ms=$(ms_since "$t0")
echo "MEASURED: lab up 3: ${up3_ms} ms (load: $(cut -d' ' -f1-3 /proc/loadavg))"
((up3_ms < 30000)) || fail "up 3 took ${up3_ms} ms"
source "$PGC_LAB_DIR/lab.env"
[[ $LAB_HOSTS == 3 && $LAB_ETCD == 10.250.0.2:2379 && $LAB_CLIENT_NS == pgclab-client ]] || fail "lab.env: $(cat "$PGC_LAB_DIR/lab.env")"
for f in "$LAB_SSH_KEY" "$LAB_SSH_KEY.pub" "$LAB_KNOWN_HOSTS" "$LAB_MANIFESTS/hosts.yaml" "$LAB_MANIFESTS/etcd.yaml"; do
  [[ -s $f ]] || fail "$f missing"
done
[[ $(grep -c '^kind: Host$' "$LAB_MANIFESTS/hosts.yaml") == 3 ]] || fail "hosts.yaml: $(cat "$LAB_MANIFESTS/hosts.yaml")"
grep -q 'address: 10.250.0.13' "$LAB_MANIFESTS/hosts.yaml" || fail "pg-3's address missing in hosts.yaml"
grep -q '"10.250.0.2:2379"' "$LAB_MANIFESTS/etcd.yaml" || fail "etcd.yaml: $(cat "$LAB_MANIFESTS/etcd.yaml")"
[[ $(wc -l <"$LAB_KNOWN_HOSTS") == 3 ]] && grep -q '^10.250.0.11 ssh-ed25519 ' "$LAB_KNOWN_HOSTS" || fail "known_hosts: $(cat "$LAB_KNOWN_HOSTS")"
for i in 1 2 3; do
  [[ $(lab_raw_ssh "$LAB_KNOWN_HOSTS" "$(host_ip $i)" hostname) == "pg-$i" ]] || fail "pg-$i does not answer over SSH"
done
"$LAB" status
ok "3 hosts and etcd up, files written"

step "up 3 again is a no-op"
before=$(cat "$PGC_LAB_DIR"/pids/pg-*.init)
"$LAB" up 3
[[ $(cat "$PGC_LAB_DIR"/pids/pg-*.init) == "$before" ]] || fail "hosts were restarted by a second up"
ok "idempotent"

step "up 5 adds pg-4 and pg-5"
"$LAB" up 5
[[ $(cat "$PGC_LAB_DIR"/pids/pg-{1,2,3}.init) == "$before" ]] || fail "up 5 restarted hosts 1-3"
source "$PGC_LAB_DIR/lab.env"
[[ $LAB_HOSTS == 5 && $(grep -c '^kind: Host$' "$LAB_MANIFESTS/hosts.yaml") == 5 && $(wc -l <"$LAB_KNOWN_HOSTS") == 5 ]] ||
  fail "lab.env/manifests/known_hosts not updated for 5 hosts"
[[ $(lab_raw_ssh "$LAB_KNOWN_HOSTS" 10.250.0.15 hostname) == pg-5 ]] || fail "pg-5 does not answer"
expect_rc 1 "$LAB" up 3
grep -q 'does not remove hosts' "$WORK/err" || fail "up 3 with 5 hosts: unclear error: $(cat "$WORK/err")"
ok "grown to 5; shrinking is refused with a clear error"

step "down leaves nothing behind"
recorded_pids >"$WORK/pids"
[[ $(wc -l <"$WORK/pids") -ge 10 ]] || fail "expected at least 10 lab processes, found: $(cat "$WORK/pids")"
t0=${EPOCHREALTIME/./}
"$LAB" down
echo "MEASURED: lab down (5 hosts + etcd): $(ms_since "$t0") ms"
assert_clean
assert_dead "$WORK/pids"
expect_rc 1 "$LAB" status
ok "down is complete; status reports down"

step "a second up after down works"
"$LAB" up 2 --no-etcd
source "$PGC_LAB_DIR/lab.env"
[[ $LAB_HOSTS == 2 && -z $LAB_ETCD && ! -e $LAB_MANIFESTS/etcd.yaml ]] || fail "--no-etcd: $(cat "$PGC_LAB_DIR/lab.env")"
[[ $(lab_raw_ssh "$LAB_KNOWN_HOSTS" 10.250.0.12 hostname) == pg-2 ]] || fail "pg-2 does not answer after re-up"
"$LAB" run curl -s --max-time 2 http://10.250.0.2:2379/health >/dev/null && fail "etcd answers with --no-etcd"
ok "re-up works (2 hosts, no etcd)"
recorded_pids >"$WORK/pids"
"$LAB" down >/dev/null
assert_clean
assert_dead "$WORK/pids"

step "down after a crashed up"
# Start an up in its own session and kill the whole session mid-way (like a crash or ^C).
setsid "$LAB" up 4 >"$WORK/crashed-up.log" 2>&1 &
crashed=$!
for _ in $(seq 500); do
  compgen -G "$PGC_LAB_DIR/pids/pg-*.init" >/dev/null && break
  sleep 0.02
done
kill -KILL -- "-$crashed" 2>/dev/null || true
wait "$crashed" 2>/dev/null || true
sleep 0.5
echo "after the crash: $(ip netns list | awk '{print $1}' | grep -c '^pgclab-') lab namespaces, $(ls "$PGC_LAB_DIR/pids" 2>/dev/null | wc -l) recorded PIDs"
recorded_pids >"$WORK/pids"
"$LAB" down
assert_clean
assert_dead "$WORK/pids"
ok "down cleans up a half-finished up"

step "up 8"
t0=${EPOCHREALTIME/./}
"$LAB" up 8
echo "MEASURED: lab up 8: $(ms_since "$t0") ms (load: $(cut -d' ' -f1-3 /proc/loadavg))"
source "$PGC_LAB_DIR/lab.env"
for i in $(seq 8); do
  [[ $(lab_raw_ssh "$LAB_KNOWN_HOSTS" "$(host_ip "$i")" hostname) == "pg-$i" ]] || fail "pg-$i does not answer"
done
ok "8 hosts answer over SSH"
recorded_pids >"$WORK/pids"
t0=${EPOCHREALTIME/./}
"$LAB" down
echo "MEASURED: lab down (8 hosts + etcd): $(ms_since "$t0") ms"
assert_clean
assert_dead "$WORK/pids"
ok "all done"

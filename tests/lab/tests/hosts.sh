#!/usr/bin/env bash
# Each host is reachable over SSH with strict host key checking, a tampered known_hosts is refused,
# and hosts are separate machines: files, hostname, host key, /run, /tmp, /dev/shm, PIDs. They
# start bare: no /etc/postgresql/15/main, no PostgreSQL or Patroni running. Lab traffic stays in
# the lab: no default route in the namespaces, the lab subnet unreachable from the root namespace.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

step "up 3"
lab_up 3

step "SSH with strict host key checking"
for i in 1 2 3; do
  out=$(lab_raw_ssh "$LAB_KNOWN_HOSTS" "$(host_ip $i)" 'echo "$(hostname) $(cat /etc/hostname) $(id -un)"')
  [[ $out == "pg-$i pg-$i root" ]] || fail "pg-$i answered '$out'"
done
ok "pg-1..3 answer as themselves, as root, with the lab's known_hosts"

# Tampered: pg-1's entry carries pg-2's key.
key2=$(awk '$1 == "10.250.0.12" {print $2, $3}' "$LAB_KNOWN_HOSTS")
awk -v k="$key2" '$1 == "10.250.0.11" {print $1, k; next} {print}' "$LAB_KNOWN_HOSTS" >"$WORK/tampered"
expect_rc 255 lab_raw_ssh "$WORK/tampered" 10.250.0.11 true
grep -q 'Host key verification failed' "$WORK/err" || fail "tampered known_hosts: unexpected error: $(cat "$WORK/err")"
ok "a known_hosts with the wrong key for pg-1 is refused: $(grep -m1 -o 'REMOTE HOST IDENTIFICATION HAS CHANGED' "$WORK/err" || true)"
# Unknown: no entry at all.
grep -v '^10.250.0.11 ' "$LAB_KNOWN_HOSTS" >"$WORK/missing"
expect_rc 255 lab_raw_ssh "$WORK/missing" 10.250.0.11 true
grep -q 'Host key verification failed' "$WORK/err" || fail "missing known_hosts entry: unexpected error: $(cat "$WORK/err")"
ok "a host missing from known_hosts is refused"
# And the lab's own file still works for the other hosts (sanity of the tampered copy).
lab_raw_ssh "$WORK/tampered" 10.250.0.12 true || fail "pg-2 with its right key was refused"

step "bare hosts"
for i in 1 2 3; do
  "$LAB" ssh "pg-$i" 'test ! -e /etc/postgresql/15/main && echo no-main
    test -z "$(ls -A /var/lib/postgresql)" && echo empty-home
    test ! -e /etc/patroni/config.yml && test -z "$(ls /etc/patroni/*.yml 2>/dev/null | grep -v dcs.yml)" && echo no-patroni-config
    ps -eo comm= | grep -E "^(postgres|patroni|etcd)" || echo nothing-running
    test -x /usr/lib/postgresql/15/bin/postgres && test -x /usr/bin/patroni && echo packages
    systemctl is-active patroni postgresql@15-main || true' >"$WORK/bare$i" || true
  for w in no-main empty-home no-patroni-config nothing-running packages; do
    grep -qx "$w" "$WORK/bare$i" || fail "pg-$i is not bare ($w): $(cat "$WORK/bare$i")"
  done
done
ok "hosts are bare: packages present, no /etc/postgresql/15/main, no configuration, nothing running"

step "separate machines"
for i in 1 2 3; do
  "$LAB" ssh "pg-$i" 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | cut -d" " -f2' >"$WORK/fp$i"
done
[[ $(sort -u "$WORK"/fp? | wc -l) == 3 ]] || fail "host keys are not distinct: $(cat "$WORK"/fp?)"
for i in 1 2 3; do
  want=$(ssh-keygen -lf <(awk -v a="$(host_ip $i)" '$1 == a {print $2, $3}' "$LAB_KNOWN_HOSTS") | cut -d' ' -f2)
  [[ $(cat "$WORK/fp$i") == "$want" ]] || fail "pg-$i's host key does not match known_hosts"
done
ok "each host has its own ed25519 host key, the one in known_hosts"
"$LAB" ssh pg-1 'ls /etc/ssh/ssh_host_*' >"$WORK/keys"
[[ $(cat "$WORK/keys") == $'/etc/ssh/ssh_host_ed25519_key\n/etc/ssh/ssh_host_ed25519_key.pub' ]] ||
  fail "pg-1 sees other host keys: $(cat "$WORK/keys")"

mark=pgclab-test-$$
"$LAB" ssh pg-2 "echo $mark | tee /etc/$mark /var/$mark /root/$mark /tmp/$mark /run/$mark /dev/shm/$mark /var/lib/postgresql/$mark /usr/$mark >/dev/null"
"$LAB" ssh pg-2 "cat /etc/$mark /var/$mark /root/$mark /tmp/$mark /run/$mark /dev/shm/$mark /var/lib/postgresql/$mark /usr/$mark" >"$WORK/seen"
[[ $(grep -c "$mark" "$WORK/seen") == 8 ]] || fail "pg-2 cannot read back its own files"
for i in 1 3; do
  left=$("$LAB" ssh "pg-$i" "ls -d /etc/$mark /var/$mark /root/$mark /tmp/$mark /run/$mark /dev/shm/$mark /var/lib/postgresql/$mark /usr/$mark 2>/dev/null || true")
  [[ -z $left ]] || fail "pg-$i sees pg-2's files: $left"
done
for f in /etc/$mark /var/$mark /root/$mark /tmp/$mark /run/$mark /dev/shm/$mark /var/lib/postgresql/$mark /usr/$mark; do
  [[ ! -e $f ]] || fail "the root namespace sees pg-2's $f"
done
ok "files written on pg-2 (/etc /var /usr /root /tmp /run /dev/shm /var/lib/postgresql) are invisible on pg-1, pg-3 and here"

for i in 1 2 3; do
  "$LAB" ssh "pg-$i" 'cat /etc/machine-id; readlink /proc/1/exe; cat /proc/1/comm' >"$WORK/id$i"
  [[ $(sed -n 3p "$WORK/id$i") == runsvdir ]] || fail "pg-$i: PID 1 is $(sed -n 3p "$WORK/id$i"), not runsvdir"
done
[[ $(head -qn1 "$WORK"/id? | sort -u | wc -l) == 3 ]] || fail "machine-ids are not distinct"
ok "own machine-id and PID namespace (PID 1 = runsvdir) on each host"

step "lab traffic stays in the lab"
for ns in pgclab-client pgclab-etcd pgclab-h1 pgclab-h2 pgclab-h3; do
  routes=$(ip -n "$ns" route show)
  [[ $routes != *default* ]] || fail "$ns has a default route: $routes"
done
out=$(ip route show)
[[ $out == *"unreachable 10.250.0.0/24"* ]] || fail "no 'unreachable 10.250.0.0/24' route here: $out"
out=$(ip route get 10.250.0.11 2>&1 || true)
[[ $out == *nreachable* || $out == *"No route to host"* ]] || fail "the lab subnet is reachable from the root namespace: $out"
[[ -z $(ip -o addr show dev pgclab-br0) ]] || fail "the bridge has an address: $(ip -o addr show dev pgclab-br0)"
out=$("$LAB" ssh pg-1 'ip route get 192.0.2.1 2>&1 || true')
[[ $out == *nreachable* ]] || fail "a host can reach outside the lab: $out"
ok "no default routes, no bridge address, 'unreachable 10.250.0.0/24' here"

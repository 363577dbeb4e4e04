#!/usr/bin/env bash
# Bare mode (`lab up --bare`): a host whose /etc, /var, /usr come from the cached Debian 12 minbase
# root file system, not from this machine: no PostgreSQL, Patroni, etcd, pgbouncer on disk; its
# only apt source is the lab's repository, served from the client namespace, against which
# `apt-get update` works and `apt-get install -s postgresql-15 patroni` resolves; sshd answers with
# the recorded host key; `lab down` leaves nothing (namespaces, the repository's HTTP server).
# Runs on its own lab (CTest gives it PGC_LAB_ID=2). A cold cache is built first (minutes; needs
# deb.debian.org); later runs reuse it.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
for tool in debootstrap apt-ftparchive; do
  command -v "$tool" >/dev/null || skip "missing $tool (run scripts/install-deps)"
done

step "the base image and the repository (cache: ${PGC_LAB_CACHE:-/var/cache/pgconverge-lab})"
t0=$SECONDS
"$LAB_ROOT/bare-image" build >"$WORK/paths" || fail "bare-image build failed"
source "$WORK/paths" # ROOTFS= REPO=
ok "built or found in $((SECONDS - t0)) s: $ROOTFS, $REPO"
# Nothing of the packages pgconverge installs is in the base.
for p in postgresql-15 postgresql-common postgresql-client-15 patroni etcd-server etcd-client pgbouncer prometheus-postgres-exporter; do
  if grep -qx "Package: $p" "$ROOTFS/var/lib/dpkg/status"; then fail "the base holds $p"; fi
  grep -qx "Package: $p" "$REPO/Packages" || [[ $p == postgresql-common ]] || fail "the repository lacks $p"
done

step "up 1 --bare --no-etcd"
t0=$SECONDS
lab_up 1 --bare --no-etcd
ok "up in $((SECONDS - t0)) s"
[[ ${LAB_BARE:-} == 1 ]] || fail "lab.env: LAB_BARE='${LAB_BARE:-}', want 1"
[[ $LAB_APT_REPO == "http://$SUBNET.1:8080/" ]] || fail "lab.env: LAB_APT_REPO=$LAB_APT_REPO"
grep -q '^kind: Host' "$LAB_MANIFESTS/hosts.yaml" || fail "hosts.yaml has no Host"
[[ ! -e $LAB_MANIFESTS/etcd.yaml ]] || fail "etcd.yaml written with --no-etcd"
"$LAB" status >"$WORK/status" || fail "lab status failed: $(cat "$WORK/status")"
grep -E "^pg-1 .* answers +bare " "$WORK/status" >/dev/null || fail "status does not say pg-1 is bare: $(cat "$WORK/status")"
grep -E "^repo .* answers " "$WORK/status" >/dev/null || fail "status does not show the repository answering: $(cat "$WORK/status")"
ok "lab.env (LAB_BARE=1), hosts.yaml, status ('bare', repository answers)"

step "sshd answers with the recorded host key"
ip=$(host_ip 1)
out=$(lab_raw_ssh "$LAB_KNOWN_HOSTS" "$ip" 'echo "$(hostname) $(id -un)"') || fail "strict-host-key SSH to pg-1 failed"
[[ $out == "pg-1 root" ]] || fail "pg-1 answered '$out'"
ip netns exec "$LAB_CLIENT_NS" ssh-keyscan -T 5 -t ed25519 "$ip" 2>/dev/null | awk '{print $2, $3}' >"$WORK/scanned"
want=$(awk -v a="$ip" '$1 == a {print $2, $3}' "$LAB_KNOWN_HOSTS")
[[ -n $want && $(cat "$WORK/scanned") == "$want" ]] || fail "pg-1 presents '$(cat "$WORK/scanned")', known_hosts has '$want'"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/other_key"
awk -v a="$ip" -v k="$(cut -d' ' -f1,2 "$WORK/other_key.pub")" '$1 == a {print $1, k; next} {print}' "$LAB_KNOWN_HOSTS" >"$WORK/wrong"
expect_rc 255 lab_raw_ssh "$WORK/wrong" "$ip" true
grep -q 'Host key verification failed' "$WORK/err" || fail "a wrong known key: unexpected error: $(cat "$WORK/err")"
ok "pg-1's ed25519 key is the one in known_hosts; another key is refused"

step "a different userland: Debian 12 minbase, none of the packages"
"$LAB" ssh pg-1 '. /etc/os-release; echo "os $VERSION_CODENAME"
  test -s /etc/pgconverge-lab-image && echo image
  for f in /usr/lib/postgresql /usr/bin/psql /usr/bin/pg_lsclusters /usr/bin/patroni /usr/bin/patronictl /usr/bin/etcd \
    /usr/bin/etcdctl /usr/sbin/pgbouncer /usr/bin/prometheus-postgres-exporter /etc/postgresql /etc/patroni /var/lib/postgresql; do
    test -e "$f" && echo "present $f"
  done
  for p in postgresql-15 postgresql-common patroni etcd-server pgbouncer prometheus-postgres-exporter; do
    dpkg-query -W -f="\${Status}\n" "$p" 2>/dev/null | grep -q "ok installed" && echo "installed $p"
  done
  getent passwd postgres >/dev/null && echo "user postgres"
  ps -eo comm= | grep -E "^(postgres|patroni|etcd|pgbouncer)" && echo running
  test -x /usr/sbin/sshd && test -x /usr/bin/runsvdir && test -x /usr/bin/python3 && echo stand-ins
  test -z "$(find /home /opt /srv -mindepth 1 -maxdepth 1)" && echo empty-dirs
  test -e '"$LAB_ROOT"'/lab && echo "sees the source tree"
  echo "pid1 $(cat /proc/1/comm)"
  awk '\''$2 == "00000000" {print "default route"}'\'' /proc/net/route
  true' >"$WORK/bare" || fail "inspecting pg-1 failed: $(cat "$WORK/bare")"
grep -E '^(present|installed|user|running|sees|default)' "$WORK/bare" && fail "pg-1 is not bare: $(cat "$WORK/bare")"
for w in "os bookworm" image stand-ins empty-dirs "pid1 runsvdir"; do
  grep -qx "$w" "$WORK/bare" || fail "pg-1: '$w' missing: $(cat "$WORK/bare")"
done
# This machine has them (lib.sh checked): the host's /usr is not this machine's.
[[ -x /usr/bin/patroni && -x /usr/lib/postgresql/15/bin/postgres ]] || fail "this machine lacks patroni/postgres"
ok "pg-1 runs Debian 12 minbase + sshd/runit/python3: no PostgreSQL/Patroni/etcd/pgbouncer/exporter, no postgres user, no default route, none of this machine's /home /opt /srv or source tree"

step "apt against the lab repository"
"$LAB" ssh pg-1 'grep -v "^#" /etc/apt/sources.list; ls /etc/apt/sources.list.d | wc -l' >"$WORK/sources"
[[ $(cat "$WORK/sources") == "deb [trusted=yes] http://$SUBNET.1:8080/ ./"$'\n'0 ]] ||
  fail "pg-1's apt sources: $(cat "$WORK/sources")"
t0=$SECONDS
expect_rc 0 "$LAB" ssh pg-1 'apt-get update'
grep -q "http://$SUBNET.1:8080 ./ Packages" "$WORK/out" || fail "apt-get update did not fetch the lab's Packages: $(cat "$WORK/out")"
expect_rc 0 "$LAB" ssh pg-1 'apt-get install -s --no-install-recommends postgresql-15 patroni'
for p in postgresql-15 postgresql-common patroni python3-psycopg2 python3-etcd; do
  grep -q "^Inst $p " "$WORK/out" || fail "apt-get install -s does not install $p: $(tail -n 20 "$WORK/out")"
done
grep -q "^Conf postgresql-15 " "$WORK/out" || fail "apt-get install -s does not configure postgresql-15"
n=$(grep -c '^Inst ' "$WORK/out")
expect_rc 0 "$LAB" ssh pg-1 'dpkg-query -W -f="\${Status}\n" postgresql-15 2>/dev/null | grep -c "ok installed" || true'
[[ $(cat "$WORK/out") == 0 ]] || fail "the simulation installed something"
ok "apt-get update + install -s postgresql-15 patroni: $n packages resolved from the lab repository in $((SECONDS - t0)) s"

step "down leaves nothing"
recorded_pids >"$WORK/pids"
http=$(cut -d' ' -f1 "$PGC_LAB_DIR/pids/repo.http")
grep -q "^$http " "$WORK/pids" || fail "the repository server is not among the recorded processes"
[[ $(tr '\0' ' ' <"/proc/$http/cmdline") == *http.server* ]] || fail "repo.http ($http) is not the HTTP server"
"$LAB" down
assert_dead "$WORK/pids"
assert_clean
ok "no namespace, link, route, mount, state dir or process (the HTTP server $http included) left"

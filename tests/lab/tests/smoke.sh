#!/usr/bin/env bash
# Real software on a lab host: PostgreSQL 15 by hand (initdb + pg_ctl) reached with psql from the
# client namespace; etcd put/get with etcdctl; then Patroni 3.0.2 through Debian's
# patroni@.service and the systemctl stand-in, and the `lab patroni` fault helpers on it.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

step "up 1"
lab_up 1
PG=/usr/lib/postgresql/15/bin

step "PostgreSQL 15 by hand on pg-1, psql from the client namespace"
"$LAB" ssh pg-1 "set -e; cd /
  install -d -o postgres -g postgres -m 2775 /run/postgresql
  runuser -u postgres -- $PG/initdb -D /var/lib/postgresql/15/smoke -A trust -U postgres >/dev/null
  echo 'host all all 10.250.0.1/32 trust' >>/var/lib/postgresql/15/smoke/pg_hba.conf
  runuser -u postgres -- $PG/pg_ctl -D /var/lib/postgresql/15/smoke -l /var/lib/postgresql/smoke.log \
    -o '-c listen_addresses=10.250.0.11' -w -t 60 start >/dev/null"
out=$("$LAB" run env PGCONNECT_TIMEOUT=5 psql -h 10.250.0.11 -U postgres -d postgres -XAtc \
  "select current_setting('server_version_num')::int / 10000, inet_server_addr(), current_user")
[[ $out == "15|10.250.0.11|postgres" ]] || fail "psql from the client namespace: '$out'"
ok "psql from the client namespace reached PostgreSQL 15 on 10.250.0.11 ($out)"
"$LAB" ssh pg-1 "cd / && runuser -u postgres -- $PG/pg_ctl -D /var/lib/postgresql/15/smoke -m fast -w stop >/dev/null
  rm -rf /var/lib/postgresql/15/smoke /var/lib/postgresql/smoke.log"
[[ -z $(live_procs pg-1 '^postgres') ]] || fail "postgres still running after pg_ctl stop"
ok "stopped and cleaned up"

step "etcd put/get from the client namespace"
etcdctl_() { "$LAB" run env ETCDCTL_API=3 etcdctl --endpoints="$LAB_ETCD" --dial-timeout=3s "$@"; }
[[ $(etcdctl_ put /pgclab/smoke hello) == OK ]] || fail "etcdctl put"
[[ $(etcdctl_ get --print-value-only /pgclab/smoke) == hello ]] || fail "etcdctl get"
etcdctl_ del /pgclab/smoke >/dev/null
ok "etcdctl put/get/del against $LAB_ETCD"

step "Patroni through patroni@15-smoke.service"
"$LAB" ssh pg-1 'bash -s' <<'EOF'
set -e
install -d -m 0750 -o root -g postgres /etc/patroni
cat >/etc/patroni/15-smoke.yml <<'YML'
scope: smoke
name: smoke-1
restapi: {listen: 10.250.0.11:8008, connect_address: 10.250.0.11:8008}
etcd3: {hosts: 10.250.0.2:2379}
bootstrap:
  dcs: {ttl: 10, loop_wait: 1, retry_timeout: 4}
  initdb: [{encoding: UTF8}]
postgresql:
  listen: 10.250.0.11:5432
  connect_address: 10.250.0.11:5432
  data_dir: /var/lib/postgresql/15/smoke
  bin_dir: /usr/lib/postgresql/15/bin
  authentication:
    superuser: {username: postgres, password: smoke}
    replication: {username: replicator, password: smoke}
  pg_hba:
    - local all all trust
    - host all all 10.250.0.0/24 trust
    - host replication replicator 10.250.0.0/24 trust
YML
chown root:postgres /etc/patroni/15-smoke.yml
chmod 0640 /etc/patroni/15-smoke.yml
install -d -o postgres -g postgres -m 2775 /run/postgresql
systemctl enable --now patroni@15-smoke
EOF
leader() { "$LAB" run curl -s --max-time 2 http://10.250.0.11:8008/patroni 2>/dev/null | grep -E '"state": "running".*"role": "(master|primary)"' >/dev/null; }
for _ in $(seq 120); do leader && break; sleep 0.5; done
leader || fail "Patroni did not become a running leader: $("$LAB" ssh pg-1 'systemctl status patroni@15-smoke; tail -n 30 /var/log/pgclab/patroni@15-smoke.service.log')"
[[ $("$LAB" run psql -h 10.250.0.11 -U postgres -d postgres -XAtc 'select 42') == 42 ]] || fail "psql to Patroni's PostgreSQL"
expect_rc 0 "$LAB" ssh pg-1 systemctl is-enabled patroni@15-smoke
ok "Patroni leads smoke with its PostgreSQL on 10.250.0.11, started by systemctl enable --now"

patroni_pid() { "$LAB" exec pg-1 cat /run/pgclab-systemd/units/patroni@15-smoke.service/sv/supervise/pid; }
pstate() { "$LAB" exec pg-1 awk '/^State:/{print $2}' "/proc/$1/status"; }
pid=$(patroni_pid)
"$LAB" patroni pg-1 freeze
[[ $(pstate "$pid") == T ]] || fail "freeze: Patroni (pid $pid) is in state $(pstate "$pid")"
"$LAB" patroni pg-1 thaw
[[ $(pstate "$pid") != T ]] || fail "thaw: Patroni (pid $pid) still stopped"
ok "freeze/thaw stop and continue Patroni (pid $pid in pg-1)"
"$LAB" patroni pg-1 kill
sleep 1.5 # runsv would have restarted it within ~1 s
expect_rc 3 "$LAB" ssh pg-1 systemctl is-active patroni@15-smoke
[[ $(cat "$WORK/out") == failed ]] || fail "after kill: '$(cat "$WORK/out")'"
[[ -n $(live_procs pg-1 '^postgres') ]] || fail "PostgreSQL died with Patroni (KillMode=process)"
ok "kill: patroni@ (Restart=no) stays failed, not restarted; PostgreSQL keeps running (KillMode=process)"
expect_rc 0 "$LAB" ssh pg-1 systemctl start patroni@15-smoke
for _ in $(seq 120); do leader && break; sleep 0.5; done
leader || fail "Patroni did not take over again"
"$LAB" patroni pg-1 stop
expect_rc 3 "$LAB" ssh pg-1 systemctl is-active patroni@15-smoke
[[ $(cat "$WORK/out") == inactive ]] || fail "after stop: '$(cat "$WORK/out")'"
[[ -z $(live_procs pg-1 '^(postgres|patroni)') ]] || fail "processes left after stop"
ok "restart, then 'lab patroni stop': inactive, PostgreSQL shut down by Patroni"

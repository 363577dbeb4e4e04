#!/bin/bash
# Runs ON a lab host (piped through `lab ssh pg-1 bash -s` by systemctl.sh): the systemctl stand-in
# against unit files written to /etc/systemd/system, with systemd's exit codes. Prints one line per
# check; exits 1 if any failed.
set -u
failures=0
pass() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; failures=$((failures + 1)); }

# rc DESC WANT_RC CMD... : exit status (output kept in $OUT)
rc() {
  local desc=$1 want=$2 got=0
  shift 2
  OUT=$("$@" 2>&1) || got=$?
  if [ "$got" = "$want" ]; then pass "$desc (exit $got)"; else bad "$desc: exit $got, want $want; output: $OUT"; fi
}
# is DESC WANT CMD... : stdout (trimmed) equals WANT
is() {
  local desc=$1 want=$2 got
  shift 2
  got=$("$@" 2>/dev/null)
  if [ "$got" = "$want" ]; then pass "$desc = $want"; else bad "$desc: '$got', want '$want'"; fi
}
# eventually SECONDS CMD... : CMD succeeds within SECONDS
eventually() {
  local limit=$1 i=0
  shift
  while [ "$i" -lt $((limit * 20)) ]; do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.05
    i=$((i + 1))
  done
  return 1
}
prop() { systemctl show -p "$2" --value "$1"; }

mkdir -p /etc/systemd/system/labtest.service.d
cat >/etc/systemd/system/labtest.service <<'EOF'
[Unit]
Description=pgconverge lab test unit
After=network.target

[Service]
Type=simple
User=postgres
Group=postgres
RuntimeDirectory=labtest
RuntimeDirectoryMode=0750
Environment=FOO=from-unit
EnvironmentFile=-/etc/default/labtest-missing
ExecStart=/bin/sh -c 'trap "echo hup >>/run/labtest/hup" HUP; echo "$$FOO" >/run/labtest/foo; id -un >/run/labtest/user; while :; do sleep 0.1; done'
ExecReload=/bin/kill -HUP $MAINPID
Restart=no

[Install]
WantedBy=multi-user.target
EOF
printf '[Service]\nEnvironment=FOO=from-dropin\n' >/etc/systemd/system/labtest.service.d/env.conf

echo "--- a simple service: start, status, reload, enable/disable"
rc "is-active on a stopped unit" 3 systemctl is-active labtest
[ "$OUT" = inactive ] && pass "it prints 'inactive'" || bad "is-active printed '$OUT'"
rc "is-enabled on a disabled unit" 1 systemctl is-enabled labtest
[ "$OUT" = disabled ] && pass "it prints 'disabled'" || bad "is-enabled printed '$OUT'"
rc "start" 0 systemctl start labtest
rc "is-active" 0 systemctl is-active labtest
rc "is-active --quiet" 0 systemctl is-active --quiet labtest
[ -z "$OUT" ] && pass "--quiet prints nothing" || bad "--quiet printed '$OUT'"
eventually 5 test -s /run/labtest/user || bad "the service did not run"
is "runs as User=" postgres cat /run/labtest/user
is "Environment= from the drop-in wins" from-dropin cat /run/labtest/foo
is "RuntimeDirectory owner:mode" "postgres:postgres 750" stat -c '%U:%G %a' /run/labtest
is ActiveState active prop labtest ActiveState
is SubState running prop labtest SubState
is LoadState loaded prop labtest LoadState
is UnitFileState disabled prop labtest UnitFileState
is FragmentPath /etc/systemd/system/labtest.service prop labtest FragmentPath
is DropInPaths /etc/systemd/system/labtest.service.d/env.conf prop labtest DropInPaths
pid=$(prop labtest MainPID)
[ "${pid:-0}" -gt 1 ] && [ "$(cat /proc/"$pid"/comm)" = sh ] && pass "MainPID $pid is the service" || bad "MainPID '$pid'"
[ -n "$(prop labtest ExecMainStartTimestamp)" ] && pass "ExecMainStartTimestamp set" || bad "no ExecMainStartTimestamp"
out=$(systemctl show -p ActiveState -p SubState labtest)
[ "$out" = "$(printf 'ActiveState=active\nSubState=running')" ] && pass "show -p A -p B" || bad "show -p A -p B: $out"
out=$(systemctl show --property=MainPID,LoadState labtest)
[ "$out" = "$(printf 'MainPID=%s\nLoadState=loaded' "$pid")" ] && pass "show --property=A,B" || bad "show --property=A,B: $out"
rc "status of an active unit" 0 systemctl status labtest
echo "$OUT" | grep -q 'Active: active (running)' && pass "status shows active (running)" || bad "status: $OUT"
rc "reload" 0 systemctl reload labtest
eventually 3 grep -q hup /run/labtest/hup && pass "ExecReload ran (the service got SIGHUP)" || bad "no SIGHUP recorded"
rc "enable" 0 systemctl enable labtest
[ "$(readlink /etc/systemd/system/multi-user.target.wants/labtest.service)" = /etc/systemd/system/labtest.service ] &&
  pass "enable made the multi-user.target.wants symlink" || bad "no wants symlink"
echo "$OUT" | grep -q '^Created symlink /etc/systemd/system/multi-user.target.wants/labtest.service' &&
  pass "enable says 'Created symlink …'" || bad "enable printed: $OUT"
rc "is-enabled after enable" 0 systemctl is-enabled labtest
is UnitFileState enabled prop labtest UnitFileState
rc "disable" 0 systemctl disable labtest
[ ! -e /etc/systemd/system/multi-user.target.wants/labtest.service ] && pass "disable removed the symlink" || bad "symlink left"
rc "is-enabled after disable" 1 systemctl is-enabled labtest
echo "--- preset: what deb-systemd-helper runs at a package's first installation"
rc "preset --preset-mode=enable-only, no preset file names the unit" 0 systemctl --preset-mode=enable-only preset labtest
rc "systemd's default policy enabled it" 0 systemctl is-enabled labtest
mkdir -p /etc/systemd/system-preset
echo 'disable labtest.service' >/etc/systemd/system-preset/00-labtest.preset
rc "preset --preset-mode=enable-only with 'disable labtest.service'" 0 systemctl --preset-mode=enable-only preset labtest
rc "enable-only leaves it enabled" 0 systemctl is-enabled labtest
rc "preset (full) with 'disable labtest.service'" 0 systemctl preset labtest
rc "the preset file disabled it" 1 systemctl is-enabled labtest
rm -f /etc/systemd/system-preset/00-labtest.preset
rc "preset of an unknown unit" 1 systemctl preset nosuch
journalctl -u labtest --no-pager | grep -q 'Reloading' && pass "journalctl -u shows the unit's log" || bad "journalctl -u labtest"

echo "--- Restart=no: a killed service stays dead"
kill -KILL "$pid"
sleep 1.5 # runsv would have restarted it within ~1 s
rc "is-active after SIGKILL (Restart=no)" 3 systemctl is-active labtest
[ "$OUT" = failed ] && pass "it is 'failed'" || bad "is-active printed '$OUT'"
rc "is-failed" 0 systemctl is-failed labtest
is "MainPID after the kill" 0 prop labtest MainPID
is "Result" signal prop labtest Result
is "NRestarts" 0 prop labtest NRestarts
[ ! -e /run/labtest ] && pass "RuntimeDirectory removed when it ended" || bad "/run/labtest left"
rc "reload of an inactive unit" 1 systemctl reload labtest
echo "$OUT" | grep -q 'Job for labtest.service invalid.' && pass "'Job for … invalid.'" || bad "reload inactive printed: $OUT"
rc "try-restart of an inactive unit" 0 systemctl try-restart labtest
rc "it stays inactive" 3 systemctl is-active labtest
rc "reload-or-restart starts an inactive unit" 0 systemctl reload-or-restart labtest
rc "is-active" 0 systemctl is-active labtest
pid1=$(prop labtest MainPID)
rc "restart" 0 systemctl restart labtest
pid2=$(prop labtest MainPID)
[ "$pid2" != "$pid1" ] && [ "$pid2" -gt 1 ] && pass "restart gave a new MainPID ($pid1 → $pid2)" || bad "restart: $pid1 → $pid2"
rc "stop" 0 systemctl stop labtest
rc "is-active after stop" 3 systemctl is-active labtest
[ "$OUT" = inactive ] && pass "it is 'inactive' (not failed)" || bad "after stop: '$OUT'"
kill -0 "$pid2" 2>/dev/null && bad "the process survived stop" || pass "stop ended the process"
rc "enable --now" 0 systemctl enable --now labtest
rc "active after enable --now" 0 systemctl is-active labtest
rc "enabled after enable --now" 0 systemctl is-enabled labtest
rc "disable --now" 0 systemctl disable --now labtest
rc "inactive after disable --now" 3 systemctl is-active labtest
rc "disabled after disable --now" 1 systemctl is-enabled labtest

echo "--- daemon-reload: a changed unit file of a loaded unit"
systemctl start labtest
echo "# changed" >>/etc/systemd/system/labtest.service
is NeedDaemonReload yes prop labtest NeedDaemonReload
rc "daemon-reload" 0 systemctl daemon-reload
is "NeedDaemonReload after daemon-reload" no prop labtest NeedDaemonReload
systemctl stop labtest

echo "--- Restart=always and Restart=on-failure"
cat >/etc/systemd/system/always.service <<'EOF'
[Service]
ExecStart=/bin/sleep 1000
Restart=always
EOF
rc "start Restart=always unit" 0 systemctl start always
a1=$(prop always MainPID)
kill -KILL "$a1"
restarted() { a2=$(prop always MainPID) && [ "$a2" -gt 1 ] && [ "$a2" != "$a1" ] && systemctl is-active -q always; }
eventually 5 restarted && pass "Restart=always: restarted after SIGKILL ($a1 → $(prop always MainPID))" || bad "not restarted"
is "NRestarts" 1 prop always NRestarts
rc "stop" 0 systemctl stop always
sleep 1.2
rc "a stopped Restart=always unit stays stopped" 3 systemctl is-active always

cat >/etc/systemd/system/onfail.service <<'EOF'
[Service]
ExecStart=/bin/sh -c 'if [ -e /run/onfail.once ]; then exit 0; fi; touch /run/onfail.once; exit 1'
Restart=on-failure
EOF
rm -f /run/onfail.once
rc "start Restart=on-failure unit (fails once, then exits 0)" 0 systemctl start onfail
settled() { [ "$(prop onfail NRestarts)" = 1 ] && [ "$(prop onfail ActiveState)" = inactive ]; }
eventually 6 settled && pass "restarted once after exit 1, not after exit 0" ||
  bad "on-failure: NRestarts=$(prop onfail NRestarts) ActiveState=$(prop onfail ActiveState)"
is Result success prop onfail Result

echo "--- unknown units"
rc "start of an unknown unit" 5 systemctl start nosuch
[ "$OUT" = "Failed to start nosuch.service: Unit nosuch.service not found." ] && pass "message: $OUT" || bad "message: $OUT"
rc "stop of an unknown unit" 5 systemctl stop nosuch
rc "restart of an unknown unit" 5 systemctl restart nosuch
rc "reload of an unknown unit" 5 systemctl reload nosuch
rc "is-active of an unknown unit" 3 systemctl is-active nosuch
[ "$OUT" = inactive ] && pass "prints 'inactive'" || bad "prints '$OUT'"
rc "is-enabled of an unknown unit" 1 systemctl is-enabled nosuch
rc "status of an unknown unit" 4 systemctl status nosuch
rc "enable of an unknown unit" 1 systemctl enable nosuch
is "LoadState of an unknown unit" not-found prop nosuch LoadState
rc "reload of a unit without ExecReload=" 3 systemctl reload always
rc "unknown verb" 1 systemctl frobnicate labtest

echo "--- ConditionPathExists="
cat >/etc/systemd/system/cond.service <<'EOF'
[Unit]
ConditionPathExists=/run/cond.flag
[Service]
ExecStart=/bin/sleep 1000
EOF
rm -f /run/cond.flag
rc "start with an unmet condition succeeds" 0 systemctl start cond
rc "… and the unit stays inactive" 3 systemctl is-active cond
is ConditionResult no prop cond ConditionResult
systemctl status cond | grep -q 'ConditionPathExists=/run/cond.flag was not met' && pass "status names the condition" || bad "status: $(systemctl status cond)"
touch /run/cond.flag
rc "start once the path exists" 0 systemctl start cond
rc "active" 0 systemctl is-active cond
systemctl stop cond

echo "--- Debian's patroni@.service template"
rc "cat patroni@15-main" 0 systemctl cat patroni@15-main
[ "$(echo "$OUT" | head -n1)" = "# /lib/systemd/system/patroni@.service" ] && pass "cat shows the template file" || bad "cat: $(echo "$OUT" | head -n1)"
is "LoadState of patroni@15-main" loaded prop patroni@15-main LoadState
is "FragmentPath" /lib/systemd/system/patroni@.service prop patroni@15-main FragmentPath
is "User (from the template)" postgres prop patroni@15-main User
is "RuntimeDirectory (%i)" postgresql/15-main.pg_stat_tmp prop patroni@15-main RuntimeDirectory
is "Restart" no prop patroni@15-main Restart
is "KillMode" process prop patroni@15-main KillMode
rc "start patroni@15-main without /etc/patroni/15-main.yml" 0 systemctl start patroni@15-main
rc "it stays inactive (ConditionPathExists unmet)" 3 systemctl is-active patroni@15-main
is "ConditionResult" no prop patroni@15-main ConditionResult
rc "is-enabled patroni@15-main" 1 systemctl is-enabled patroni@15-main
rc "enable patroni@15-main" 0 systemctl enable patroni@15-main
[ "$(readlink /etc/systemd/system/multi-user.target.wants/patroni@15-main.service)" = /lib/systemd/system/patroni@.service ] &&
  pass "instance symlink → template" || bad "instance symlink: $(ls -l /etc/systemd/system/multi-user.target.wants/)"
rc "disable patroni@15-main" 0 systemctl disable patroni@15-main

echo "--- specifiers, Type=notify, Type=forking, Type=oneshot, ExecStartPre=, EnvironmentFile="
cat >/etc/systemd/system/spec@.service <<'EOF'
[Unit]
Description=instance %i
[Service]
ExecStart=/bin/sh -c 'echo "i=%i I=%I n=%n p=%p" >/run/spec-%i; exec sleep 1000'
EOF
rc "start spec@a-b (template)" 0 systemctl start spec@a-b
eventually 3 test -s /run/spec-a-b
is "specifiers" "i=a-b I=a/b n=spec@a-b.service p=spec" cat /run/spec-a-b
systemctl stop spec@a-b

cat >/etc/systemd/system/notify.service <<'EOF'
[Service]
Type=notify
ExecStart=/bin/sh -c 'sleep 1; systemd-notify --ready; exec sleep 1000'
EOF
if command -v systemd-notify >/dev/null; then
  t0=$(date +%s%N)
  rc "start Type=notify (ready after 1 s)" 0 systemctl start notify
  ms=$((($(date +%s%N) - t0) / 1000000))
  [ "$ms" -ge 900 ] && pass "start waited for READY=1 (${ms} ms)" || bad "start returned after ${ms} ms"
  rc "active" 0 systemctl is-active notify
  systemctl stop notify
else
  echo "skip: Type=notify (no systemd-notify on this machine)"
fi

cat >/etc/systemd/system/fork.service <<'EOF'
[Service]
Type=forking
PIDFile=/run/fork.pid
ExecStart=/bin/sh -c 'sleep 1000 & echo $$! >/run/fork.pid'
EOF
rc "start Type=forking" 0 systemctl start fork
fpid=$(cat /run/fork.pid 2>/dev/null)
is "MainPID = PIDFile" "$fpid" prop fork MainPID
rc "stop Type=forking" 0 systemctl stop fork
kill -0 "$fpid" 2>/dev/null && bad "forked daemon survived stop" || pass "the forked daemon is gone"

cat >/etc/systemd/system/oneshot.service <<'EOF'
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/touch /run/oneshot.done
ExecStop=/bin/rm -f /run/oneshot.done
EOF
rc "start Type=oneshot" 0 systemctl start oneshot
[ -e /run/oneshot.done ] && pass "ran synchronously" || bad "oneshot did not run"
is SubState exited prop oneshot SubState
rc "active (RemainAfterExit)" 0 systemctl is-active oneshot
rc "stop" 0 systemctl stop oneshot
[ ! -e /run/oneshot.done ] && pass "ExecStop ran" || bad "ExecStop did not run"

cat >/etc/systemd/system/prefail.service <<'EOF'
[Service]
ExecStartPre=/bin/false
ExecStart=/bin/sleep 1000
EOF
rc "start with a failing ExecStartPre" 1 systemctl start prefail
echo "$OUT" | grep -q '^Job for prefail.service failed because the control process exited with error code.' &&
  pass "'Job for … failed …'" || bad "message: $OUT"
rc "is-failed" 0 systemctl is-failed prefail
sed -i 's|^ExecStartPre=/bin/false|ExecStartPre=-/bin/false|' /etc/systemd/system/prefail.service
rc "reset-failed" 0 systemctl reset-failed prefail
rc "start with ExecStartPre=-/bin/false" 0 systemctl start prefail
rc "active" 0 systemctl is-active prefail
systemctl stop prefail

cat >/etc/systemd/system/envfile.service <<'EOF'
[Service]
EnvironmentFile=/etc/default/envfile-missing
ExecStart=/bin/sleep 1000
EOF
rc "start with a missing (required) EnvironmentFile" 1 systemctl start envfile
printf 'X=1\n' >/etc/default/envfile-missing
rc "start once it exists" 0 systemctl start envfile
systemctl stop envfile

# Debian's own units that pgconverge runs beside Patroni (when the packages are installed here).
# pgbouncer.service: Type=notify (active only once PgBouncer said READY=1), User=postgres,
# ExecReload=/bin/kill -HUP $MAINPID (a reload keeps the process).
if [ -f /lib/systemd/system/pgbouncer.service ]; then
  install -d -o postgres -g postgres -m 2775 /var/run/postgresql
  printf '[databases]\n* = host=/var/run/postgresql\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = 16432\nunix_socket_dir =\nauth_type = trust\nauth_file = /etc/pgbouncer/userlist.txt\n' \
    >/etc/pgbouncer/pgbouncer.ini
  is "pgbouncer Type" notify prop pgbouncer Type
  is "pgbouncer User" postgres prop pgbouncer User
  rc "start pgbouncer (Type=notify)" 0 systemctl start pgbouncer
  rc "pgbouncer active" 0 systemctl is-active pgbouncer
  pid=$(prop pgbouncer MainPID)
  is "pgbouncer runs as postgres" postgres ps -o user= -p "$pid"
  rc "pgbouncer listens" 0 eventually 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/16432'
  rc "reload pgbouncer (kill -HUP \$MAINPID)" 0 systemctl reload pgbouncer
  is "pgbouncer MainPID after reload" "$pid" prop pgbouncer MainPID
  rc "pgbouncer still active" 0 systemctl is-active pgbouncer
  rc "stop pgbouncer" 0 systemctl stop pgbouncer
  rc "pgbouncer inactive" 3 systemctl is-active pgbouncer
fi
# prometheus-postgres-exporter.service: User=prometheus, EnvironmentFile= whose $ARGS is split into
# words on ExecStart, Restart=on-failure.
if [ -f /lib/systemd/system/prometheus-postgres-exporter.service ]; then
  printf "DATA_SOURCE_NAME='user=prometheus host=/var/run/postgresql dbname=postgres'\nARGS='--web.listen-address=127.0.0.1:19187 --log.level=warn'\n" \
    >/etc/default/prometheus-postgres-exporter
  rc "start the exporter" 0 systemctl start prometheus-postgres-exporter
  pid=$(prop prometheus-postgres-exporter MainPID)
  is "the exporter runs as prometheus" prometheus ps -o user= -p "$pid"
  rc "the exporter serves /metrics on \$ARGS' address" 0 eventually 10 curl -fsS -o /dev/null http://127.0.0.1:19187/metrics
  rc "stop the exporter" 0 systemctl stop prometheus-postgres-exporter
fi

echo "--- $failures failure(s)"
[ "$failures" = 0 ]

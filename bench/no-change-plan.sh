#!/usr/bin/env bash
# No-change `plan` over N hosts against two baselines measured in the same run (issue 8):
#   - pgconverge plan (one SSH connection per host, all probes of a host in one round trip,
#     hosts and members observed in parallel); exit code 0 is checked on every run;
#   - OpenSSH: one `ssh` per host, one host after the other, running the same checks as
#     pgconverge's probe (dpkg-query, the Patroni config, systemctl is-active/is-enabled,
#     PG_VERSION), then curl of Patroni's REST API and psql of every member, as a shell user would;
#   - Ansible (Debian's `ansible` package): a playbook with gather_facts, package_facts, stat and
#     slurp of the config, the unit's state, uri of Patroni's /cluster, /config, /patroni and psql
#     through `command:`, with the default forks (5) and with forks=N.
# The lab is grown to each N (light hosts: sshd only); one small real cluster (3 members, sync)
# lives on the first hosts so that there is Patroni/PostgreSQL state to check; `apply` after each
# growth takes the new hosts into the cluster's pg_hba (the pool), then `plan` must exit 0.
# Everything runs in the lab's client namespace. Prints markdown tables: median and min–max over
# RUNS, machine CPU (all cores, from /proc/stat) and the ratio baseline ÷ pgconverge (medians).
#
#   PGC_LAB_ID=3 bench/no-change-plan.sh [-k RUNS] [-n "4 8 16 32 64"] [--ansible-max N]
#                                       [--no-ansible-forks-n]
#   -k RUNS            repetitions per figure (default 5)
#   -n LIST            host counts, ascending (default "4 8 16 32 64"; the first must be >= 4)
#   --ansible-max N    run the Ansible baseline only up to N hosts (default 8; it is slow)
#   --no-ansible-forks-n  only forks=5 (default also forks=N when N > 5)
# Env: PGC_BINARY (default build/pgconverge), PGC_BENCH_RESULTS=FILE keeps the raw TSV.
# Needs root (the lab). Tears its lab down at the end.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LAB=$ROOT/tests/lab/lab
PGC=${PGC_BINARY:-$ROOT/build/pgconverge}
RUNS=5
SIZES="4 8 16 32 64"
ANSIBLE_MAX=8
ANSIBLE_FORKS_N=1
while (($#)); do
  case $1 in
    -k) RUNS=$2; shift 2 ;;
    -n) SIZES=$2; shift 2 ;;
    --ansible-max) ANSIBLE_MAX=$2; shift 2 ;;
    --no-ansible-forks-n) ANSIBLE_FORKS_N=0; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown argument '$1' (see --help)" >&2; exit 64 ;;
  esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "bench: -k must be a positive number" >&2; exit 64; }
prev=0
for n in $SIZES; do
  [[ $n =~ ^[0-9]+$ ]] && ((n > prev)) || { echo "bench: -n must list ascending host counts" >&2; exit 64; }
  prev=$n
done
FIRST=${SIZES%% *}
((FIRST >= 4)) || { echo "bench: the smallest N must be >= 4 (3 members + a light host)" >&2; exit 64; }
[[ $(id -u) -eq 0 ]] || { echo "bench: needs root (the lab)" >&2; exit 77; }
[[ -x $PGC ]] || { echo "bench: build pgconverge first ($PGC)" >&2; exit 1; }
for t in jq psql curl python3; do command -v "$t" >/dev/null || { echo "bench: missing $t" >&2; exit 77; }; done
HAVE_ANSIBLE=1
command -v ansible-playbook >/dev/null || {
  HAVE_ANSIBLE=0
  echo "bench: ansible-playbook not found (apt-get install -y ansible): the Ansible baseline is skipped" >&2
}

export PGC_LAB_ID=${PGC_LAB_ID:-0}
if [[ $PGC_LAB_ID == 0 ]]; then export PGC_LAB_DIR=${PGC_LAB_DIR:-/tmp/pgconverge-lab}
else export PGC_LAB_DIR=${PGC_LAB_DIR:-/tmp/pgconverge-lab$PGC_LAB_ID}; fi
WORK=$(mktemp -d /tmp/pgc-bench-plan.XXXXXX)
trap '"$LAB" down >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
RESULTS=$WORK/results.tsv
: >"$RESULTS"
say() { echo "bench: $*" >&2; }

CLUSTER=bench
MAJOR=15
PACKAGES="postgresql-$MAJOR postgresql-client-$MAJOR patroni python3-etcd"
CONFIG=/etc/patroni/$MAJOR-$CLUSTER.yml
UNIT=patroni@$MAJOR-$CLUSTER
DATA_DIR=/var/lib/postgresql/$MAJOR/$CLUSTER
# The statements pgconverge sends to every member (providers/postgres).
SQL="SELECT pg_is_in_recovery(), current_setting('server_version'), current_setting('server_version_num'), current_setting('synchronous_standby_names'); SELECT application_name, state, sync_state FROM pg_stat_replication ORDER BY application_name; SELECT name FROM pg_settings WHERE pending_restart ORDER BY name;"

# ---------------------------------------------------------------------------------------------
# Helpers that run inside the client namespace.

# timed.sh RESULT CMD...: runs CMD; RESULT gets "seconds machine-cpu-seconds exit-code";
# CMD's output goes to RESULT.out / RESULT.err.
cat >"$WORK/timed.sh" <<'SH'
out=$1; shift
read -r -a a </proc/stat; c0=$((a[1] + a[2] + a[3] + a[6] + a[7] + a[8])); t0=${EPOCHREALTIME/./}
rc=0; "$@" >"$out.out" 2>"$out.err" || rc=$?
t1=${EPOCHREALTIME/./}; read -r -a a </proc/stat; c1=$((a[1] + a[2] + a[3] + a[6] + a[7] + a[8]))
tck=$(getconf CLK_TCK)
awk -v t="$((t1 - t0))" -v c="$((c1 - c0))" -v k="$tck" -v rc="$rc" 'BEGIN{printf "%.4f %.2f %d\n", t / 1e6, c / k, rc}' >"$out"
SH

# The per-host checks, as a shell user would write them for `ssh host '...'`.
cat >"$WORK/probe.sh" <<SH
for p in $PACKAGES; do printf '%s ' "\$p"; dpkg-query -W -f='\${Status}\n' "\$p" 2>/dev/null || echo 'not installed'; done
echo "--- $CONFIG"; cat $CONFIG 2>/dev/null || echo 'no such file'
echo "--- $UNIT"; systemctl is-active $UNIT; systemctl is-enabled $UNIT
if [ -f $DATA_DIR/PG_VERSION ]; then echo "data dir: PostgreSQL \$(cat $DATA_DIR/PG_VERSION)"; else echo "data dir: none"; fi
echo end
SH

# openssh.sh OUTDIR "ADDRESSES" MEMBER_ADDRESS: the OpenSSH baseline, one host after the other.
cat >"$WORK/openssh.sh" <<SH
set -euo pipefail
out=\$1 first=\$3
read -r -a hosts <<<"\$2"
source "$PGC_LAB_DIR/lab.env"
probe=\$(cat "$WORK/probe.sh")
for ip in "\${hosts[@]}"; do
  ssh -F "\$LAB_SSH_CONFIG" "\$ip" "\$probe" >"\$out/\$ip.probe"
  tail -n1 "\$out/\$ip.probe" | grep -qx end || { echo "ssh \$ip: probe incomplete" >&2; exit 1; }
done
auth="pgconverge:\$(cat "$WORK/restapi")"
curl -sf --max-time 5 --cacert "$WORK/ca.pem" -u "\$auth" "https://\$first:8008/cluster" >"\$out/cluster.json"
curl -sf --max-time 5 --cacert "$WORK/ca.pem" -u "\$auth" "https://\$first:8008/config" >"\$out/config.json"
leader=\$(jq -r '.members[] | select(.role == "leader" or .role == "master") | .host' "\$out/cluster.json")
curl -sf --max-time 5 --cacert "$WORK/ca.pem" -u "\$auth" "https://\$leader:8008/patroni" >"\$out/patroni.json"
export PGPASSWORD=\$(cat "$WORK/superuser") PGCONNECT_TIMEOUT=5
for m in \$(jq -r '.members[].host' "\$out/cluster.json"); do
  psql -h "\$m" -U postgres -d postgres -XAtqc "$SQL" >"\$out/\$m.sql"
done
SH

# The Ansible playbook: the same facts and checks, with what Debian's ansible package ships
# (ansible.builtin only).
cat >"$WORK/observe.yml" <<YAML
- name: Hosts - what pgconverge plan probes
  hosts: lab
  gather_facts: true
  vars:
    pg_packages: [${PACKAGES// /, }]
    patroni_config: $CONFIG
    patroni_unit: "$UNIT"
    pg_data_dir: $DATA_DIR
  tasks:
    - name: Installed packages
      ansible.builtin.package_facts:
    - name: Which of the packages are missing
      ansible.builtin.set_fact:
        missing_packages: "{{ pg_packages | difference(ansible_facts.packages.keys() | list) }}"
    - name: Patroni configuration
      ansible.builtin.stat:
        path: "{{ patroni_config }}"
      register: config_stat
    - name: Patroni configuration contents
      ansible.builtin.slurp:
        src: "{{ patroni_config }}"
      register: config_contents
      when: config_stat.stat.exists
    # service_facts sees no systemd in the lab (PID 1 is runsvdir, it reads /proc/1/comm) and
    # ansible.builtin.systemd wants a state to enforce: ask systemctl, as the probe does.
    - name: Patroni unit
      ansible.builtin.shell: "systemctl is-active {{ patroni_unit }}; systemctl is-enabled {{ patroni_unit }}"
      register: unit_state
      changed_when: false
      failed_when: false
    - name: Data directory
      ansible.builtin.stat:
        path: "{{ pg_data_dir }}/PG_VERSION"
      register: pg_version

- name: Members - Patroni and PostgreSQL state
  hosts: members
  gather_facts: false
  tasks:
    - name: Patroni cluster
      ansible.builtin.uri:
        url: "https://{{ ansible_host }}:8008/cluster"
        ca_path: "{{ patroni_ca }}"
        user: pgconverge
        password: "{{ restapi_password }}"
        force_basic_auth: true
        return_content: true
      register: patroni_cluster
      run_once: true
    - name: Patroni dynamic configuration
      ansible.builtin.uri:
        url: "https://{{ ansible_host }}:8008/config"
        ca_path: "{{ patroni_ca }}"
        user: pgconverge
        password: "{{ restapi_password }}"
        force_basic_auth: true
        return_content: true
      register: patroni_dcs
      run_once: true
    - name: Patroni member
      ansible.builtin.uri:
        url: "https://{{ ansible_host }}:8008/patroni"
        ca_path: "{{ patroni_ca }}"
        return_content: true
      register: patroni_member
    - name: PostgreSQL state
      ansible.builtin.command:
        argv: [psql, -h, "{{ ansible_host }}", -U, postgres, -d, postgres, -XAtqc, "{{ pg_sql }}"]
      environment:
        PGPASSWORD: "{{ superuser_password }}"
        PGCONNECT_TIMEOUT: "5"
      vars:
        pg_sql: "$SQL"
      register: pg_state
      changed_when: false
YAML

# ---------------------------------------------------------------------------------------------

pgc() {
  "$LAB" run "$PGC" "$1" -s "$PGC_LAB_DIR/manifests" -s "$WORK/cluster" --ssh-identity "$LAB_SSH_KEY" \
    --known-hosts "$LAB_KNOWN_HOSTS" --state-dir "$WORK/state" "${@:2}"
}

# measure N LABEL CMD...: one timed run in the client namespace; a failing run aborts the bench.
measure() {
  local n=$1 label=$2 r=$WORK/r.$RANDOM
  shift 2
  "$LAB" run bash "$WORK/timed.sh" "$r" "$@"
  local secs cpu rc
  read -r secs cpu rc <"$r"
  if [[ $rc != "${EXPECT_RC:-0}" ]]; then
    say "$label over $n hosts exited with $rc (want ${EXPECT_RC:-0}); its output:"
    tail -n 30 "$r.out" "$r.err" >&2
    exit 1
  fi
  printf '%s\t%s\t%s\t%s\n' "$n" "$label" "$secs" "$cpu" >>"$RESULTS"
  say "$(printf '%3d hosts  %-40s %7.3f s  cpu %6.2f s' "$n" "$label" "$secs" "$cpu")"
  rm -f "$r" "$r.out" "$r.err"
}

write_cluster() {
  mkdir -p "$WORK/cluster"
  cat >"$WORK/cluster/cluster.yaml" <<YAML
apiVersion: stackgres.io/v1
kind: SGPostgresConfig
metadata: {name: pgconfig1}
spec:
  postgresVersion: "15"
  postgresql.conf:
    wal_sender_timeout: 5s
    max_connections: "100"
---
apiVersion: stackgres.io/v1
kind: SGCluster
metadata:
  name: $CLUSTER
  annotations: {pgconverge.io/client-cidrs: $LAB_CLIENT_ADDRESS/32}
spec:
  postgres: {version: "15"}
  instances: 3
  configurations:
    sgPostgresConfig: pgconfig1
    patroni:
      dynamicConfig: {ttl: 10, loop_wait: 1, retry_timeout: 4}
  pods:
    scheduling:
      nodeSelector: {pgconverge.io/lab: "true"}
  replication:
    mode: sync
    role: ha-read
    syncInstances: 1
YAML
}

# apply until converged, then plan must exit 0 (a bench of a failing run is worthless).
converge() {
  local i rc
  for i in 1 2 3; do
    rc=0; pgc apply --progress quiet >"$WORK/apply.out" 2>&1 || rc=$?
    [[ $rc == 0 ]] && break
    say "apply exited with $rc (attempt $i):"; tail -n 15 "$WORK/apply.out" >&2
    sleep 2
  done
  for i in $(seq 20); do
    rc=0; pgc plan >"$WORK/plan.out" 2>&1 || rc=$?
    [[ $rc == 0 ]] && return 0
    sleep 1
  done
  say "plan still exits with $rc after apply:"; tail -n 30 "$WORK/plan.out" >&2
  exit 1
}

pss_of_host() { # N → MiB of every process in host N's PID namespace (runsvdir, runsv, sshd)
  "$LAB" exec "pg-$1" sh -c 'for p in /proc/[0-9]*; do awk "/^Pss:/{s+=\$2} END{print s+0}" $p/smaps_rollup 2>/dev/null; done' |
    awk '{s += $1} END {printf "%.2f\n", s / 1024}'
}

MAXN=${SIZES##* }
# ---- the lab itself: a cold `up MAXN` and what the light hosts weigh
"$LAB" down >/dev/null 2>&1 || true
avail0=$(awk '/^MemAvailable:/{print $2}' /proc/meminfo)
t0=${EPOCHREALTIME/./}
"$LAB" up "$MAXN" >/dev/null
t1=${EPOCHREALTIME/./}
sleep 1
avail1=$(awk '/^MemAvailable:/{print $2}' /proc/meminfo)
pss=()
for ((i = 1; i <= MAXN; i++)); do pss+=("$(pss_of_host "$i")"); done
disk=$(du -sm "$PGC_LAB_DIR" | awk '{print $1}')
LAB_UP_SECS=$(awk -v d="$((t1 - t0))" 'BEGIN{printf "%.2f", d / 1e6}')
LAB_PSS=$(printf '%s\n' "${pss[@]}" | python3 -c 'import sys, statistics as s; v=[float(x) for x in sys.stdin]; print(f"{s.median(v):.2f} MiB ({min(v):.2f}–{max(v):.2f}), {sum(v):.0f} MiB for {len(v)}")')
LAB_AVAIL=$(( (avail0 - avail1) / 1024 ))
say "lab up $MAXN (cold): ${LAB_UP_SECS}s; PSS per host $LAB_PSS; MemAvailable -$LAB_AVAIL MiB; state dir $disk MiB"
"$LAB" down >/dev/null

# ---- the cluster on the first hosts, then each N
"$LAB" up "$FIRST" >/dev/null
# shellcheck source=/dev/null
source "$PGC_LAB_DIR/lab.env"
write_cluster
t0=${EPOCHREALTIME/./}
converge
say "bootstrap of 3 members on $FIRST hosts: $(awk -v d="$((${EPOCHREALTIME/./} - t0))" 'BEGIN{printf "%.1f", d / 1e6}')s"
jq -r .restapi "$WORK/state/secrets/default.$CLUSTER.json" >"$WORK/restapi"
jq -r .superuser "$WORK/state/secrets/default.$CLUSTER.json" >"$WORK/superuser"
chmod 0600 "$WORK/restapi" "$WORK/superuser"
# Members serve Patroni's REST API over https with certificates of the cluster's CA (state dir).
sed -n '/BEGIN CERTIFICATE/,/END CERTIFICATE/p' "$WORK/state/tls/default.$CLUSTER.ca.pem" >"$WORK/ca.pem"

for n in $SIZES; do
  if ((n != FIRST)); then
    "$LAB" up "$n" >/dev/null
    # shellcheck source=/dev/null
    source "$PGC_LAB_DIR/lab.env"
    converge # the new hosts join the cluster's pool (pg_hba): one apply, then no change
  fi
  pgc status "$CLUSTER" -o json >"$WORK/status.json" 2>/dev/null
  members=$(jq -r '.clusters[0].members[].host' "$WORK/status.json" | sort -t. -k4,4n | tr '\n' ' ')
  first_member=${members%% *}
  [[ $(wc -w <<<"$members") == 3 ]] || { say "expected 3 members, status shows: $members"; exit 1; }
  read -r -a addrs <<<"$LAB_HOST_ADDRESSES"
  # Ansible inventory: every host, the members as a group.
  {
    echo "[lab]"
    for ((i = 1; i <= n; i++)); do echo "pg-$i ansible_host=${addrs[$((i - 1))]}"; done
    echo "[members]"
    for ((i = 1; i <= n; i++)); do [[ " $members " == *" ${addrs[$((i - 1))]} "* ]] && echo "pg-$i"; done
    echo "[all:vars]"
    echo "ansible_user=root"
    echo "ansible_ssh_private_key_file=$LAB_SSH_KEY"
    echo "ansible_ssh_common_args='-o UserKnownHostsFile=$LAB_KNOWN_HOSTS -o StrictHostKeyChecking=yes'"
    echo "ansible_python_interpreter=/usr/bin/python3"
    echo "restapi_password=$(cat "$WORK/restapi")"
    echo "patroni_ca=$WORK/ca.pem"
    echo "superuser_password=$(cat "$WORK/superuser")"
  } >"$WORK/inventory.$n"
  chmod 0600 "$WORK/inventory.$n"
  mkdir -p "$WORK/ssh.$n"
  workers_n=0
  ((n > 8)) && workers_n=1
  for r in $(seq "$RUNS"); do
    measure "$n" "pgconverge plan" "$PGC" plan -s "$PGC_LAB_DIR/manifests" -s "$WORK/cluster" \
      --ssh-identity "$LAB_SSH_KEY" --known-hosts "$LAB_KNOWN_HOSTS" --state-dir "$WORK/state"
    if ((workers_n)); then
      measure "$n" "pgconverge plan --workers $n" "$PGC" plan -s "$PGC_LAB_DIR/manifests" -s "$WORK/cluster" \
        --ssh-identity "$LAB_SSH_KEY" --known-hosts "$LAB_KNOWN_HOSTS" --state-dir "$WORK/state" --workers "$n"
    fi
    measure "$n" "OpenSSH, one host after the other" bash "$WORK/openssh.sh" "$WORK/ssh.$n" "${addrs[*]:0:n}" "$first_member"
    if ((HAVE_ANSIBLE && n <= ANSIBLE_MAX)); then
      forks=(5)
      ((ANSIBLE_FORKS_N && n > 5)) && forks+=("$n")
      for f in "${forks[@]}"; do
        # A fresh ControlPath dir per run: every run connects anew (as pgconverge and ssh do);
        # the ControlPersist masters are closed after the run, outside the measurement.
        cpdir=$WORK/cp.$n.$f.$r
        mkdir -p "$cpdir" "$WORK/ansible-tmp"
        measure "$n" "Ansible, forks $f" env ANSIBLE_HOME="$WORK/ansible-home" ANSIBLE_SSH_CONTROL_PATH_DIR="$cpdir" \
          ANSIBLE_LOCAL_TEMP="$WORK/ansible-tmp" \
          ANSIBLE_NOCOLOR=1 ANSIBLE_HOST_KEY_CHECKING=True \
          ansible-playbook -i "$WORK/inventory.$n" -f "$f" "$WORK/observe.yml"
        for s in "$cpdir"/*; do
          [[ -S $s ]] && "$LAB" run ssh -o ControlPath="$s" -O exit lab >/dev/null 2>&1 || true
        done
      done
    fi
  done
done

# ---------------------------------------------------------------------------------------------
[[ -z ${PGC_BENCH_RESULTS:-} ]] || cp "$RESULTS" "$PGC_BENCH_RESULTS"
python3 - "$RESULTS" "$RUNS" "$MAXN" "$LAB_UP_SECS" "$LAB_PSS" "$LAB_AVAIL" <<'PY'
import collections, statistics, sys
path, runs, maxn, up, pss, avail = sys.argv[1:7]
data = collections.OrderedDict()
for line in open(path):
    n, label, secs, cpu = line.rstrip("\n").split("\t")
    data.setdefault((int(n), label), []).append((float(secs), float(cpu)))
med = {k: statistics.median(s for s, _ in v) for k, v in data.items()}
print(f"lab: `lab up {maxn}` from nothing {up} s; memory per light host (PSS of runsvdir, runsv, sshd) {pss}; "
      f"MemAvailable fell by {avail} MiB")
print()
print("| hosts | what | median | range | machine CPU (median) | runs | ÷ pgconverge plan |")
print("|---|---|---|---|---|---|---|")
for (n, label), v in data.items():
    secs = [s for s, _ in v]
    cpu = statistics.median(c for _, c in v)
    base = med.get((n, "pgconverge plan"))
    ratio = "–" if label.startswith("pgconverge plan") or not base else f"{med[(n, label)] / base:.1f}×"
    print(f"| {n} | {label} | {statistics.median(secs):.2f} s | {min(secs):.2f}–{max(secs):.2f} | {cpu:.2f} s | {len(v)} | {ratio} |")
sizes = sorted({n for n, _ in data})
print()
print("Growth of the no-change `plan` (median):", ", ".join(f"{n} hosts {med[(n, 'pgconverge plan')]:.2f} s" for n in sizes))
if len(sizes) > 1:
    a, b = sizes[0], sizes[-1]
    ta, tb = med[(a, "pgconverge plan")], med[(b, "pgconverge plan")]
    print(f"from {a} to {b} hosts: ×{tb / ta:.2f} for ×{b / a:.0f} hosts, {1000 * (tb - ta) / (b - a):.1f} ms per added host")
    oa, ob = med[(a, "OpenSSH, one host after the other")], med[(b, "OpenSSH, one host after the other")]
    print(f"OpenSSH sequential: {1000 * (ob - oa) / (b - a):.1f} ms per added host")
PY

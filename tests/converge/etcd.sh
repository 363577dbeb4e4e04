#!/usr/bin/env bash
# The etcd pgconverge runs itself (EtcdCluster spec.hosts), on 3 bare hosts without the lab's etcd.
# First an etcd formed plain (spec.tls.enabled: false, as an older pgconverge formed every one):
# asking TLS of it afterwards is refused by plan and apply, naming the field and the way forward,
# and nothing changes (files, Patroni's leader). Then, on fresh hosts, the default: one apply
# installs etcd with peer and client TLS and client certificates from a CA in the state dir, forms
# a 3-member cluster and bootstraps a sync Patroni cluster on it over TLS. The managed etcd refuses
# a plain-HTTP client, a TLS client without a certificate and one with another CA's certificate,
# and answers one with a certificate from its CA; a second plan is empty; a member certificate
# near its expiry shows in plan as a renewal and apply renews it while Patroni keeps its leader; an
# edited /etc/default/etcd on one member is rewritten and that member alone restarted.
source "$(dirname "$0")/lib.sh"
"$LAB" down >/dev/null 2>&1 || true
"$LAB" up 3 --no-etcd
# shellcheck source=/dev/null
source "$PGC_LAB_DIR/lab.env"
[[ -z $LAB_ETCD && ! -e $LAB_MANIFESTS/etcd.yaml ]] || fail "the lab runs its own etcd"
read -r first _ <<<"$LAB_HOST_ADDRESSES"

# patronictl from the client namespace through the managed etcd (https with a client certificate
# when TLS is on).
patronictl_leaders() {
  local endpoints tls=""
  endpoints=$(printf '%s:2379,' $LAB_HOST_ADDRESSES); endpoints=${endpoints%,}
  if [[ ${1:-tls} == tls ]]; then
    [[ -s $WORK/etcd-client.crt ]] || etcd_client_certificate etcd-client
    tls=", protocol: https, cacert: $WORK/etcd-ca.crt, cert: $WORK/etcd-client.crt, key: $WORK/etcd-client.key"
  fi
  printf 'scope: onetcd\nnamespace: /service/\netcd3: {hosts: "%s"%s}\n' "$endpoints" "$tls" >"$WORK/patronictl.yml"
  "$LAB" run patronictl -c "$WORK/patronictl.yml" list -f json 2>/dev/null | jq -r '.[] | select(.Role=="Leader") | .Member'
}
files_digest() { for h in pg-1 pg-2 pg-3; do "$LAB" ssh "$h" 'md5sum /etc/default/etcd /etc/patroni/15-onetcd.yml'; done; }

step "an etcd formed plain (spec.tls.enabled: false)"
ETCD_TLS=false write_managed_etcd pg-1 pg-2 pg-3
write_cluster onetcd sync 3
t0=$SECONDS
expect_exit 0 pgc apply --progress log
echo "plain etcd and Patroni formed: $((SECONDS - t0))s"
"$LAB" ssh pg-1 grep -q '^ETCD_ADVERTISE_CLIENT_URLS=http://' /etc/default/etcd || fail "the etcd is not plain"
plain_leader=$(patronictl_leaders plain)
[[ -n $plain_leader ]] || fail "no leader on the plain etcd"
digest=$(files_digest)

step "TLS asked of the running plain etcd: refused by plan and apply, nothing applied"
write_managed_etcd pg-1 pg-2 pg-3
expect_exit 1 pgc plan
grep -q "etcd dcs: member pg-1 (pg-1) serves plain http (/etc/default/etcd: http://$first:2379) but spec.tls.enabled is true (EtcdCluster dcs at .*etcd.yaml:[0-9]*:[0-9]*): pgconverge does not switch a running etcd to TLS; set spec.tls.enabled: false to keep it as it is" "$WORK/out" ||
  fail "plan does not name the member, the field and the way forward"
grep -q "cluster onetcd: not planned: its etcd dcs is refused" "$WORK/out" || fail "the cluster on the refused etcd is planned"
expect_exit 1 pgc apply --progress log
[[ $(files_digest) == "$digest" ]] || fail "apply changed a file of the refused etcd or its cluster"
[[ $(patronictl_leaders plain) == "$plain_leader" ]] || fail "Patroni's leader changed"
[[ ! -e $STATE/tls/etcd/dcs.ca.pem ]] || fail "a refused apply created the etcd's CA"

step "fresh hosts: the default, etcd on TLS"
"$LAB" down >/dev/null
"$LAB" up 3 --no-etcd
# shellcheck source=/dev/null
source "$PGC_LAB_DIR/lab.env"
rm -rf "$STATE" "$WORK"/etcd-*

step "plan: the etcd certificates, then the etcd steps, before any Patroni start"
expect_exit 2 pgc plan
order=$(grep -nE 'etcd dcs: member pg-1 \(pg-1\): /etc/etcd/tls/member.crt|etcd dcs: members pg-1, pg-2, pg-3|member onetcd-0 \(pg-1\): patroni@15-onetcd' "$WORK/out" | cut -d: -f1 | tr '\n' ' ')
read -r cert_line etcd_line patroni_line <<<"$order"
[[ -n ${patroni_line:-} && $cert_line -lt $etcd_line && $etcd_line -lt $patroni_line ]] ||
  fail "certificates, etcd start, Patroni start are not planned in that order ($order)"
grep -q "etcd dcs: Patroni's client (pg-2): /etc/patroni/etcd-tls/dcs/client.crt" "$WORK/out" ||
  fail "plan does not write Patroni's etcd client certificate"
[[ ! -e $STATE/tls/etcd/dcs.ca.pem ]] || fail "plan created the etcd's CA"

step "a data directory someone else owns: an error naming host and step, never re-owned"
# (SECURITY class 2: apply used to `install -d -o etcd` whatever the path, re-owning it.)
"$LAB" ssh pg-3 'install -d -o root -g root -m 0755 /var/lib/etcd/dcs'
expect_exit 1 pgc apply --progress log
grep -q "host pg-3 (10\.250\.[0-9]*\.13): creating directory /var/lib/etcd/dcs: /var/lib/etcd/dcs exists and belongs to user root, not etcd; refusing to change the owner of a directory pgconverge did not create (exit status 1) (step: preparing etcd's data directory)" "$WORK/err" ||
  fail "apply did not name the host, the directory and the step"
[[ $("$LAB" ssh pg-3 stat -c '%U:%G %a' /var/lib/etcd/dcs) == "root:root 755" ]] || fail "the directory was re-owned"
"$LAB" ssh pg-3 rmdir /var/lib/etcd/dcs

step "apply: etcd formed on TLS, Patroni bootstrapped on it"
t0=$SECONDS
expect_exit 0 pgc apply --progress log
echo "TLS etcd and Patroni formed: $((SECONDS - t0))s"
[[ $(stat -c '%a' "$STATE/tls/etcd/dcs.ca.pem") == 600 ]] || fail "the etcd's CA is not 0600"
managed_etcdctl endpoint health 2>&1 | tee "$WORK/health"
[[ $(grep -c 'is healthy' "$WORK/health") -eq 3 ]] || fail "not every etcd member is healthy"
managed_etcdctl member list -w json >"$WORK/members"
[[ $(jq -r '[.members[].name] | sort | join(",")' "$WORK/members") == "pg-1,pg-2,pg-3" ]] ||
  fail "members: $(cat "$WORK/members")"
[[ $(jq -r '[.members[].peerURLs[]] | map(startswith("https://")) | all' "$WORK/members") == true ]] ||
  fail "peer URLs are not https: $(cat "$WORK/members")"
for h in pg-1 pg-2 pg-3; do
  "$LAB" ssh "$h" 'stat -c "%U:%G %a" /var/lib/etcd/dcs /etc/etcd/tls/member.key /etc/patroni/etcd-tls/dcs/client.key; grep -c "^ETCD_NAME='"$h"'$" /etc/default/etcd; systemctl is-enabled etcd' \
    >"$WORK/host" || fail "$h: data dir, keys or config missing"
  [[ $(tr '\n' ' ' <"$WORK/host") == "etcd:etcd 700 root:etcd 640 root:postgres 640 1 enabled " ]] || fail "$h: $(cat "$WORK/host")"
done
"$LAB" ssh pg-2 grep -q 'protocol: https' /etc/patroni/15-onetcd.yml || fail "Patroni's etcd3 is not https"

step "the managed etcd refuses plain HTTP, TLS without a client certificate, another CA's certificate"
"$LAB" run env ETCDCTL_API=3 etcdctl --endpoints="http://$first:2379" --dial-timeout=2s --command-timeout=3s \
  endpoint health >"$WORK/plain" 2>&1 && fail "a plain-HTTP client was answered: $(cat "$WORK/plain")"
"$LAB" run curl -s -m 5 "http://$first:2379/health" >"$WORK/plain" 2>&1 || true
grep -q '"health"' "$WORK/plain" && fail "plain HTTP /health was answered: $(cat "$WORK/plain")"
"$LAB" run env ETCDCTL_API=3 etcdctl --endpoints="https://$first:2379" --cacert "$WORK/etcd-ca.crt" \
  --dial-timeout=2s --command-timeout=3s endpoint health >"$WORK/nocert" 2>&1 && fail "a client without certificate was answered"
"$LAB" run curl -s -m 5 --cacert "$WORK/etcd-ca.crt" "https://$first:2379/health" >"$WORK/nocert" 2>&1 &&
  fail "curl without a client certificate was answered: $(cat "$WORK/nocert")"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/other-ca.key" -subj /CN=other \
  -days 1 -out "$WORK/other-ca.crt" 2>/dev/null
cat "$WORK/other-ca.key" "$WORK/other-ca.crt" >"$WORK/other-ca.pem"
etcd_client_certificate etcd-other "$WORK/other-ca.pem"
"$LAB" run env ETCDCTL_API=3 etcdctl --endpoints="https://$first:2379" --cacert "$WORK/etcd-ca.crt" \
  --cert "$WORK/etcd-other.crt" --key "$WORK/etcd-other.key" --dial-timeout=2s --command-timeout=3s \
  endpoint health >"$WORK/other" 2>&1 && fail "a client with another CA's certificate was answered"
"$LAB" run curl -s -m 5 --cacert "$WORK/etcd-ca.crt" --cert "$WORK/etcd-client.crt" --key "$WORK/etcd-client.key" \
  "https://$first:2379/health" | tee "$WORK/ok"
grep -q '"health":"true"' "$WORK/ok" || fail "a client with the CA's certificate was not answered"

step "Patroni on the TLS etcd: a leader, replicas streaming"
leader=$(patronictl_leaders)
[[ -n $leader ]] || fail "patronictl (through the managed etcd, TLS) shows no leader"
check_replication onetcd 1

step "a second plan: no changes"
expect_exit 0 pgc plan
grep -q "No changes" "$WORK/out" || fail "not idempotent"

step "renewal: pg-2's member certificate 10 days from its expiry"
read -r _ pg2 _ <<<"$LAB_HOST_ADDRESSES"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/pg-2.key" -subj /CN=pg-2 \
  -out "$WORK/pg-2.csr" 2>/dev/null
printf 'extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:%s,IP:127.0.0.1\n' "$pg2" >"$WORK/pg-2.ext"
openssl x509 -req -in "$WORK/pg-2.csr" -CA "$STATE/tls/etcd/dcs.ca.pem" -CAkey "$STATE/tls/etcd/dcs.ca.pem" \
  -set_serial "$RANDOM$RANDOM" -days 10 -extfile "$WORK/pg-2.ext" -out "$WORK/pg-2.crt" 2>/dev/null
"$LAB" ssh pg-2 'umask 027; cat > /etc/etcd/tls/member.key.new && chgrp etcd /etc/etcd/tls/member.key.new && mv /etc/etcd/tls/member.key.new /etc/etcd/tls/member.key' <"$WORK/pg-2.key"
"$LAB" ssh pg-2 'cat > /etc/etcd/tls/member.crt' <"$WORK/pg-2.crt"
managed_etcdctl endpoint health >/dev/null 2>&1 || fail "etcd does not take the short certificate"
expect_exit 2 pgc plan
grep -A4 "etcd dcs: member pg-2 (pg-2): /etc/etcd/tls/member.crt" "$WORK/out" | tee "$WORK/renewal"
grep -q "renewed 30 days before; then /health on pg-2" "$WORK/renewal" || fail "plan does not show the renewal"
grep -q "CN=pg-2, until" "$WORK/renewal" || fail "plan does not show the certificate's subject and expiry"
grep -qE "member pg-(1|3) \(pg-(1|3)\): /etc/etcd/tls/member.crt" "$WORK/out" && fail "plan renews a certificate not due"
# Patroni's leader key is read through the apply (over TLS, from the client namespace): it must
# be there, and the same, every time.
leader_key() { managed_etcdctl get /service/onetcd/leader --print-value-only 2>/dev/null; }
[[ $(leader_key) == "$leader" ]] || fail "the leader key is not $leader: $(leader_key)"
( while [[ ! -e $WORK/stop-sampling ]]; do k=$(leader_key) || true; echo "${k:--}" >>"$WORK/leaders"; sleep 0.1; done ) &
sampler=$!
expect_exit 0 pgc apply --progress log
touch "$WORK/stop-sampling"; wait "$sampler"
echo "leader samples during the renewal: $(sort "$WORK/leaders" | uniq -c | tr '\n' ' ')"
[[ $(sort -u "$WORK/leaders") == "$leader" ]] || fail "Patroni's leader was not $leader throughout the renewal"
days=$(( ($(date -d "$("$LAB" ssh pg-2 openssl x509 -enddate -noout -in /etc/etcd/tls/member.crt | cut -d= -f2)" +%s) - $(date +%s)) / 86400 ))
[[ $days -gt 300 ]] || fail "pg-2's certificate was not renewed ($days days left)"
managed_etcdctl endpoint health >/dev/null 2>&1 || fail "etcd not healthy after the renewal"
expect_exit 0 pgc plan
grep -q "No changes" "$WORK/out" || fail "not idempotent after the renewal"

step "drift: an edited /etc/default/etcd on pg-2"
"$LAB" ssh pg-2 "echo ETCD_HEARTBEAT_INTERVAL=150 >> /etc/default/etcd"
pid_before=$("$LAB" ssh pg-2 systemctl show -p MainPID --value etcd)
expect_exit 2 pgc plan
grep -q "drift in ETCD_HEARTBEAT_INTERVAL" "$WORK/out" || fail "plan misses the etcd config drift"
grep -q "etcd dcs: member pg-2 (pg-2): etcd.service" "$WORK/out" || fail "plan does not restart pg-2's etcd"
grep -qE "member pg-(1|3) \(pg-(1|3)\): etcd.service" "$WORK/out" && fail "plan restarts a member without drift"
expect_exit 0 pgc apply --progress log
"$LAB" ssh pg-2 grep -q HEARTBEAT /etc/default/etcd && fail "the drift is still in pg-2's config"
pid_after=$("$LAB" ssh pg-2 systemctl show -p MainPID --value etcd)
[[ $pid_before != "$pid_after" ]] || fail "pg-2's etcd was not restarted"
managed_etcdctl endpoint health 2>&1 | tee "$WORK/health"
[[ $(grep -c 'is healthy' "$WORK/health") -eq 3 ]] || fail "etcd not healthy after the drift fix"
[[ -n $(patronictl_leaders) ]] || fail "Patroni lost its leader"
expect_exit 0 pgc plan
grep -q "No changes" "$WORK/out" || fail "not idempotent after the drift fix"
echo "PASS ($SECONDS s)"

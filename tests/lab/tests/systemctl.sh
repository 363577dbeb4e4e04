#!/usr/bin/env bash
# The systemctl stand-in (runit underneath) starts, stops, reloads and reports units written to
# /etc/systemd/system over SSH, with systemd's exit codes, and recognises Debian's templates.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

step "up 1 (no etcd)"
lab_up 1 --no-etcd

step "exit codes as pgconverge sees them, one SSH command each"
"$LAB" ssh pg-1 'printf "[Service]\nExecStart=/bin/sleep 1000\n" >/etc/systemd/system/sshtest.service'
expect_rc 3 "$LAB" ssh pg-1 systemctl is-active sshtest
[[ $(cat "$WORK/out") == inactive ]] || fail "is-active printed '$(cat "$WORK/out")'"
expect_rc 0 "$LAB" ssh pg-1 systemctl start sshtest
expect_rc 0 "$LAB" ssh pg-1 systemctl is-active sshtest
[[ $(cat "$WORK/out") == active ]] || fail "is-active printed '$(cat "$WORK/out")'"
expect_rc 5 "$LAB" ssh pg-1 systemctl start nosuch
[[ $(cat "$WORK/err") == "Failed to start nosuch.service: Unit nosuch.service not found." ]] || fail "message: $(cat "$WORK/err")"
expect_rc 0 "$LAB" ssh pg-1 systemctl stop sshtest
expect_rc 3 "$LAB" ssh pg-1 systemctl is-active sshtest
expect_rc 0 "$LAB" ssh pg-1 systemctl show -p LoadState --value patroni@15-main
[[ $(cat "$WORK/out") == loaded ]] || fail "patroni@15-main LoadState: $(cat "$WORK/out")"
expect_rc 0 "$LAB" ssh pg-1 systemctl start patroni@15-main
expect_rc 3 "$LAB" ssh pg-1 systemctl is-active patroni@15-main
ok "is-active 0/3, unknown unit 5, patroni@15-main loaded from the template and inactive (no /etc/patroni/15-main.yml)"

step "the full check list, run on pg-1"
"$LAB" ssh pg-1 'bash -s' <"$(dirname "$0")/systemctl-checks.sh" | tee "$WORK/checks"
grep -q '^--- 0 failure(s)$' "$WORK/checks" || fail "systemctl checks failed: $(grep '^FAIL' "$WORK/checks")"
ok "$(grep -c '^ok:' "$WORK/checks") systemctl checks passed"

#!/bin/sh
# icemu-run --boot-retries 1 with a guest that never says hello (its init is `busybox sleep`):
# both boots must fail, the first reported as a SKIP point "boot attempt 1" whose evidence
# holds each vCPU's RIP and the kernel panic the runner's NMI caused (unknown_nmi_panic), its
# logs moved to attempt-1/, and the run must FAIL with "no hello".
# Usage: boot-retry.sh ICEMU-RUN [icemu-run options...]
set -eu
run=$1
shift
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
python3 - "$(dirname "$0")/../../scenarios/01-ufs-fscrypt-ext4.json" "$out/hang.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
s["name"] = "hang"
s["timeout_s"] = 6
s.setdefault("machine", {})["append"] = "rdinit=/bin/busybox -- sleep 600"
json.dump(s, open(sys.argv[2], "w"))
PY
rc=0
"$run" --boot-retries 1 --keep --scenario "$out/hang.json" --artifacts "$out/a" "$@" >"$out/tap" 2>"$out/err" || rc=$?
cat "$out/err" >&2
fail() { echo "FAIL: $*"; sed -n '1,80p' "$out/tap"; exit 1; }
[ "$rc" != 0 ] || fail "icemu-run passed a guest that never said hello"
[ "$(grep -c '^\[hang\] booting' "$out/err")" = 2 ] || fail "not booted exactly twice"
grep -q '^ok [0-9]* - hang: boot attempt 1 # SKIP retried' "$out/tap" || fail "no SKIP point for attempt 1"
grep -q '^not ok [0-9]* - hang: runner' "$out/tap" || fail "the second boot's failure is not reported"
for f in "$out/tap" "$out/a/hang/attempt-1/report.txt"; do
	grep -q 'RIP=' "$f" || fail "no vCPU RIP in $f"
	grep -q 'Kernel panic - not syncing: NMI' "$f" || fail "the NMI made no panic in $f"
done
[ -s "$out/a/hang/attempt-1/console.log" ] || fail "attempt-1/console.log missing or empty"
echo "PASS: a guest without hello fails both boots, with RIPs and NMI backtraces"

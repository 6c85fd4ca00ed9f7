#!/usr/bin/env bash
# ctest fstests.ufs-ext4 (label fstests): ./icemu fstests on a user's fstests tree, one test
# (generic/548: ciphertext verification of a v2 policy) on the ufs target, as a user runs it.
# Without a tree (ICEMU_FSTESTS unset: CI has none, fstests is not a Debian package) it exits
# 77, which ctest reports as SKIP with the reason below: never a silent pass.
#   test-fstests.sh [TREE] [QEMU KERNEL ROOTFS]
set -uo pipefail
tree=${1:-${ICEMU_FSTESTS:-}}
if [ -z "$tree" ]; then
	echo "SKIP: no fstests tree: set ICEMU_FSTESTS=/path/to/xfstests (environment or cmake -DICEMU_FSTESTS=...) to run this test"
	exit 77
fi
[ -f "$tree/check" ] || { echo "FAIL: ICEMU_FSTESTS=$tree is not an fstests tree (no check)"; exit 1; }
root=$(cd "$(dirname "$0")/../../.." && pwd)
[ -z "${2:-}" ] || export ICEMU_QEMU=$2
[ -z "${3:-}" ] || export ICEMU_KERNEL=$3
[ -z "${4:-}" ] || export ICEMU_ROOTFS=$4
out=$(mktemp -d /tmp/icemu-fstests-ctest-XXXXXX)
cd "$root" || exit 1 # cmake --build --preset reads CMakePresets.json from the current directory
"$root/icemu" fstests --fstests "$tree" --out "$out" generic/548
rc=$?
report=$out/report.json
[ -f "$report" ] || { echo "FAIL: no report.json (./icemu fstests exit $rc)"; exit 1; }
python3 - "$report" "$rc" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
rc = int(sys.argv[2])
t = {x["test"]: x for x in r["tests"]}
bad = []
g = t.get("generic/548")
if g is None:
    bad.append("generic/548 is not in the report")
else:
    if g["status"] != "pass":
        bad.append("generic/548: %s (%s)" % (g["status"], g["reason"]))
    if g["crypto_path"] != "native":
        bad.append("generic/548 crypto path %s, native expected" % g["crypto_path"])
    ce = sum(d["ce_writes"] for d in g["device"].values())
    if ce == 0:
        bad.append("the device saw no crypto write during generic/548")
    v = {x["name"]: x["status"] for x in g["verdicts"]}
    if v.get("keys-evicted") != "pass" or v.get("replay") != "pass":
        bad.append("device verdicts %s" % v)
if rc != 0:
    bad.append("./icemu fstests exit %d" % rc)
print("\n".join("FAIL: " + b for b in bad) or "ok: generic/548 passed natively, device verdicts pass")
sys.exit(1 if bad else 0)
PY

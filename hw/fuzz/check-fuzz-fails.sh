#!/usr/bin/env bash
# ctest fuzz.smoke-can-fail: the fuzz smoke (./icemu fuzz) must report a failing run as a
# failure. A real libFuzzer run of the ufs-crypto target under a memory limit the QEMU process
# is bound to exceed (--rss-limit-mb 64: QEMU with ASan and 512 MiB of guest RAM needs more)
# makes libFuzzer stop with "out-of-memory", exit non-zero and keep the input it was running;
# ./icemu fuzz must exit non-zero, print FAIL for the target and keep that input.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "not ok - $*" >&2; exit 1; }
rc=0
"$ROOT/icemu" fuzz --target ufs-crypto --time 60 --rss-limit-mb 64 \
	--corpus "$tmp/corpus" --artifacts "$tmp/artifacts" >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
[ "$rc" != 0 ] || fail "./icemu fuzz exited 0 although libFuzzer hit its memory limit"
grep -Eq '^ufs-crypto .* FAIL \(exit [1-9][0-9]*: .*out-of-memory' "$tmp/out" ||
	fail "the summary does not report ufs-crypto as FAIL (out-of-memory)"
ls "$tmp/artifacts/ufs-crypto/"oom-* >/dev/null 2>&1 || fail "the input was not kept"
ls "$tmp/artifacts/ufs-crypto/"ufs-crypto-*.log >/dev/null 2>&1 || fail "the fuzzer's log was not kept"
echo "ok - a failing libFuzzer run fails ./icemu fuzz and keeps its input"

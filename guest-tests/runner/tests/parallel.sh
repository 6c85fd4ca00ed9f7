#!/bin/sh
# icemu-run --jobs 2 with a long scenario first and a short one second: the short one must
# boot while the long one still runs (the two overlap), and the report must still list the
# long one first (TAP in the order given, whatever order they finish in).
# Usage: parallel.sh ICEMU-RUN [icemu-run options...]
set -eu
run=$1
shift
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
rc=0
"$run" --jobs 2 -s 01-ufs-fscrypt-ext4 -s 05-dm-reload-rule "$@" >"$out/tap" 2>"$out/err" || rc=$?
cat "$out/err" >&2
[ "$rc" = 0 ] || { echo "FAIL: icemu-run exited with $rc"; exit 1; }
order=$(sed -n 's/^# scenario //p' "$out/tap" | tr '\n' ' ')
[ "$order" = "01-ufs-fscrypt-ext4 05-dm-reload-rule " ] ||
	{ echo "FAIL: report order '$order'"; exit 1; }
up05=$(grep -n '^\[05-dm-reload-rule\] guest up' "$out/err" | cut -d: -f1)
end01=$(grep -n '^\[01-ufs-fscrypt-ext4\] PASS' "$out/err" | cut -d: -f1)
[ -n "$up05" ] && [ -n "$end01" ] || { echo "FAIL: no boot or PASS line"; exit 1; }
[ "$up05" -lt "$end01" ] || { echo "FAIL: 05 booted only after 01 ended: not side by side"; exit 1; }
echo "PASS: side by side, reported in order"

#!/usr/bin/env bash
# ctest unit.kernel-source-key: ./icemu kernel --source keys its cache on the tree's content
# (an edited tree must not get the stale bzImage back) and tells a tree without
# CONFIG_DM_INLINECRYPT what to do. Uses --print-path on a tiny fake tree: no build.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/icemu-source-key.XXXXXX)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/tree/drivers/md"
printf 'kernelversion:\n\t@echo 7.9.0\n' >"$T/tree/Makefile"
echo "config DM_INLINECRYPT" >"$T/tree/drivers/md/Kconfig"
echo one >"$T/tree/file.c"
key() { # the cache key build-kernel.sh reports for the tree (it has no cached kernel)
	ICEMU_CACHE="$T/cache" bash "$HERE/build-kernel.sh" --source "$T/tree" --print-path 2>&1 |
		sed -n 's/.*no cached kernel for \([^;]*\);.*/\1/p' || true
}
fail() { echo "FAIL: $*" >&2; exit 1; }
k1=$(key); [ -n "$k1" ] || fail "no key reported"
[ "$(key)" = "$k1" ] || fail "the same tree gave two keys"
echo two >"$T/tree/file.c"
k2=$(key); [ "$k2" != "$k1" ] || fail "an edited (non-git) tree kept its key $k1"
git -C "$T/tree" init -q && git -C "$T/tree" add -A &&
	git -C "$T/tree" -c user.name=t -c user.email=t@t commit -qm t
k3=$(key)
echo three >"$T/tree/file.c"
k4=$(key); [ "$k4" != "$k3" ] || fail "an uncommitted edit of a git tree kept its key $k3"
echo new >"$T/tree/untracked.c"
[ "$(key)" != "$k4" ] || fail "an untracked file did not change the key"
: >"$T/tree/drivers/md/Kconfig"
msg=$(ICEMU_CACHE="$T/cache" bash "$HERE/build-kernel.sh" --source "$T/tree" --print-path 2>&1 || true)
grep -q "no CONFIG_DM_INLINECRYPT.*--series 6.12" <<<"$msg" || fail "no DM_INLINECRYPT hint: $msg"
echo "ok: $k1 $k2 $k3 $k4"

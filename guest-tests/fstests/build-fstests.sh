#!/usr/bin/env bash
# build-fstests.sh [--print-path] DIR: build a user's fstests tree for icemu's guest, out of
# tree. The tree is copied (without .git and build products) to
# $ICEMU_CACHE/fstests/<key>/tree and built there with make; the key hashes the tree's
# content (a git tree: HEAD, the diff against it and the untracked files; any other tree:
# path, size and mtime of every file), so an edited tree is rebuilt and the user's tree is
# never written to. Built on the Debian bookworm host: the binaries link against glibc and
# libraries (libaio.so.1, liburing.so.2, libuuid, libacl, libattr, libhandle) whose sonames
# trixie's guest root filesystem has too. Prints the built tree's path on its last line.
set -euo pipefail
. "$(dirname "$0")/../../scripts/lib.sh"

RECIPE=1
PRINT_ONLY=0
SRC=""
while [ $# -gt 0 ]; do
	case "$1" in
	--print-path) PRINT_ONLY=1; shift ;;
	-h | --help) sed -n '2,/^[^#]/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) die "build-fstests.sh: unknown option '$1'" ;;
	*) [ -z "$SRC" ] || die "build-fstests.sh: one fstests tree only"; SRC=$1; shift ;;
	esac
done
[ -n "$SRC" ] || die "build-fstests.sh: which fstests tree? (build-fstests.sh DIR)"
[ -d "$SRC" ] || die "--fstests: no such directory '$SRC'"
SRC=$(cd "$SRC" && pwd)
[ -f "$SRC/check" ] && [ -d "$SRC/tests/generic" ] && [ -f "$SRC/configure.ac" ] ||
	die "--fstests: '$SRC' is not an fstests tree (no check, tests/generic or configure.ac)"

# fstests_key DIR: the tree's content (scripts/lib.sh tree_content_key), without what its
# own build and runs write.
fstests_key() {
	tree_content_key "$1" ! -name '*.o' ! -name '*.lo' ! -name '*.la' ! -path './results/*'
}

KEY=$( { printf 'recipe %s\n' "$RECIPE"; fstests_key "$SRC"; } | sha256sum | cut -c1-16)
OUT="$ICEMU_CACHE/fstests/$KEY"
if [ -f "$OUT/.built" ]; then
	echo "$OUT/tree"
	exit 0
fi
[ "$PRINT_ONLY" = 0 ] || die "fstests tree $SRC is not built yet (run without --print-path)"
rm -rf "$OUT"
mkdir -p "$OUT/tree"
log "copying $SRC to $OUT/tree (cache key $KEY)"
if git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# Tracked and untracked-but-not-ignored files, as they are in the work tree.
	(cd "$SRC" && git ls-files --cached --others --exclude-standard -z |
		xargs -0r cp --parents -a -t "$OUT/tree" 2>/dev/null || true)
else
	rsync -a --exclude .git --exclude results "$SRC/" "$OUT/tree/"
fi
[ -f "$OUT/tree/check" ] || die "copying the fstests tree to $OUT/tree failed"
run_logged "$OUT/build.log" "building fstests ($SRC)" nice -n 10 make -C "$OUT/tree" -j"$(nproc)"
for f in ltp/fsstress src/fssum; do
	[ -x "$OUT/tree/$f" ] || die "the fstests build produced no $f (log: $OUT/build.log)"
done
touch "$OUT/.built"
echo "$OUT/tree"

#!/usr/bin/env bash
# Mutation check: a QEMU whose crypto engine silently ignores key evictions must
# make the conformance suite fail, naming the controller and the key still held.
#
#   scripts/mutation-no-evict.sh [--build-only] [--scenario NAME]... [icemu-run options]
#
# 1. copies hw/ and scripts/ to a temporary tree and edits the engine there
#    (hw/block/inline-crypto-keyslots.c, added by the engine patch hw/patches/0005-*: every
#    x-CRYPTOCFG dword-16 write with CFGE=0 is ignored, so an evicted slot keeps its key and
#    stays armed; programming still works);
# 2. builds that QEMU with hw/build-qemu.sh under a separate cache
#    ($ICEMU_MUTANT_CACHE, default $ICEMU_CACHE/mutants/no-evict; downloads and ccache are
#    shared with the normal cache, so this mostly hits ccache);
# 3. runs the scenarios (default: 02-dm-linear-two-ufs) with icemu-run on that QEMU.
#
# Exit status: 0 when the suite FAILED as it must and the failure names a held key
# ("still holds key" from the runner's keys_evicted expectation or icemu-check's
# keys-evicted verdict); 1 when the mutant survived (the suite passed) or failed for another
# reason; 2 on a usage or build error. The working tree (hw/) is never modified.
# ICEMU_MUTANT_KEEP=1 keeps the temporary tree and the run's artifacts (path printed).
# icemu-run is taken from $ICEMU_RUN, else build/default/guest-tests/runner/icemu-run; it
# needs its configured kernel and initramfs (or pass --kernel/--initrd).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BUILD_ONLY=0
SCENARIOS=()
RUN_ARGS=()
while [ $# -gt 0 ]; do
	case "$1" in
	--build-only) BUILD_ONLY=1; shift ;;
	--scenario) SCENARIOS+=("$2"); shift 2 ;;
	*) RUN_ARGS+=("$1"); shift ;;
	esac
done
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(02-dm-linear-two-ufs)

MUTANT_CACHE=${ICEMU_MUTANT_CACHE:-$ICEMU_CACHE/mutants/no-evict}
mkdir -p "$MUTANT_CACHE"
[ -e "$MUTANT_CACHE/downloads" ] || ln -s "$ICEMU_CACHE/downloads" "$MUTANT_CACHE/downloads"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/icemu-mutant.XXXXXX")
if [ "${ICEMU_MUTANT_KEEP:-0}" = 1 ]; then
	log "keeping $TMP (ICEMU_MUTANT_KEEP=1)"
else
	trap 'rm -rf "$TMP"' EXIT
fi
mkdir -p "$TMP/tree"
cp -a "$ICEMU_ROOT/hw" "$ICEMU_ROOT/scripts" "$TMP/tree/"
ENGINE=$(grep -l -x -F -- "+++ b/hw/block/inline-crypto-keyslots.c" "$TMP"/tree/hw/patches/*.patch)
[ -n "$ENGINE" ] || die "no patch adds hw/block/inline-crypto-keyslots.c"

# The mutation: return at the top of ice_slot_disarm() (dword 16 written with CFGE=0), made
# in the patch that adds the file: one more '+' line, and its hunk (the whole new file) one
# line longer.
python3 - "$ENGINE" <<'EOF'
import re, sys
p = sys.argv[1]
s = open(p).read()
anchor = "+static void ice_slot_disarm(InlineCrypto *ic, unsigned idx, uint32_t val)\n+{\n"
if s.count(anchor) != 1:
    sys.exit("mutation-no-evict: ice_slot_disarm() was not found; update the mutation")
head = s.index("+++ b/hw/block/inline-crypto-keyslots.c\n")
m = re.compile(r"@@ -0,0 \+1,(\d+) @@").search(s, head)
if not m or m.start() > s.index(anchor):
    sys.exit("mutation-no-evict: the new-file hunk of inline-crypto-keyslots.c was not found")
s = s[:m.start()] + "@@ -0,0 +1,%d @@" % (int(m.group(1)) + 1) + s[m.end():]
s = s.replace(anchor, anchor + "+    return; /* MUTANT: evictions and disarms are ignored */\n", 1)
open(p, "w").write(s)
EOF
grep -q "MUTANT: evictions" "$ENGINE" || die "mutation not applied"

log "building the mutant QEMU (cache $MUTANT_CACHE)"
QEMU=$(ICEMU_CACHE="$MUTANT_CACHE" CCACHE_DIR="$CCACHE_DIR" nice bash "$TMP/tree/hw/build-qemu.sh" | tail -n1)
[ -x "$QEMU" ] || die "the mutant QEMU build produced no binary"
log "mutant QEMU: $QEMU"
if [ "$BUILD_ONLY" = 1 ]; then
	echo "$QEMU"
	exit 0
fi

RUNNER=${ICEMU_RUN:-$ICEMU_ROOT/build/default/guest-tests/runner/icemu-run}
[ -x "$RUNNER" ] || { echo "icemu-run not found at $RUNNER (set ICEMU_RUN)" >&2; exit 2; }
ART="$TMP/artifacts"
args=()
for s in "${SCENARIOS[@]}"; do args+=(--scenario "$s"); done
rc=0
"$RUNNER" "${args[@]}" --qemu "$QEMU" --artifacts "$ART" --keep ${RUN_ARGS[@]+"${RUN_ARGS[@]}"} \
	>"$TMP/tap" 2>"$TMP/err" || rc=$?
grep -E '^not ok' "$TMP/tap" || true
if [ "$rc" = 0 ]; then
	echo "mutation-no-evict: MUTANT SURVIVED: the suite passed on a QEMU that ignores evictions" >&2
	exit 1
fi
if grep -q "still holds" "$TMP/tap" "$ART"/*/check.txt 2>/dev/null; then
	echo "mutation-no-evict: killed (the suite failed and named the key left in a slot):" >&2
	grep -hoE '(after step [^"]*still holds [^"]*\]|ufs[0-9]+ slot [0-9]+ still holds key [0-9a-f]+)' \
		"$TMP/tap" "$ART"/*/check.txt | sort -u | head -n 20 >&2
	exit 0
fi
echo "mutation-no-evict: the suite failed, but not with a held key; stderr tail:" >&2
tail -n 30 "$TMP/err" >&2
exit 1

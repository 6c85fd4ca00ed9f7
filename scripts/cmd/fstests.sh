#!/usr/bin/env bash
# ./icemu fstests --fstests DIR [--fs ext4|f2fs] [--target ufs|emmc|mcq|dm-linear|ufs-wrapped]
#                 [--kernel PATH] [--kernel-series 7|6.12] [--fscryptctl PATH] [--out DIR]
#                 [-g GROUP | -x GROUP | TEST ...]
# Run your fstests tree's own check on icemu's emulated inline-crypto hardware, with
# -o inlinecrypt on the test and the scratch mounts, and judge every test by the device too.
# Default: -g encrypt, ext4, ufs. Builds the tree out of tree (cached by its content), shares
# it with the Debian guest over 9p, prints fstests' output and summary, then one row per
# test: result, crypto path (native / fallback), what the device saw, icemu-check's verdicts
# (a test fstests passed but the device failed is a failure). See docs/fstests.md.
#   --fstests DIR     your fstests (xfstests) tree; $ICEMU_FSTESTS when not given
#   --fs ext4|f2fs    the filesystem (FSTYP)
#   --target T        ufs: two LUs of one UFS (crypto=on); emmc: two eMMCs; mcq: UFS in
#                     MCQ mode; dm-linear: each device a dm-linear over a UFS LU and an eMMC;
#                     ufs-wrapped: ufs with the hardware key manager (generic/368, 369 run)
#   --kernel PATH     your bzImage (with guest-tests/kernel/icemu.config's options)
#   --kernel-series   7 (default) or 6.12: which icemu kernel to build and boot
#   --fscryptctl PATH a static fscryptctl binary put on the guest's PATH (generic/368, 369)
#   --out DIR         where results go (default /tmp/icemu-fstests-TARGET-FS-TIME)
# Exit: 0 every test passed or did not run, 1 a test failed (fstests or device), 2 bad input.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$ICEMU_ROOT/scripts/build-lib.sh"

usage_error() { echo "icemu fstests: error: $*" >&2; exit 2; }

FST=${ICEMU_FSTESTS:-}
FSTYP=ext4
TARGET=ufs
OUT=""
FSCRYPTCTL=""
CHECK=()
while [ $# -gt 0 ]; do
	case "$1" in
	-h | --help) usage_from_header "$0"; exit 0 ;;
	--fstests) [ $# -ge 2 ] || usage_error "--fstests needs a directory"; FST=$2; shift 2 ;;
	--fs)
		[ $# -ge 2 ] || usage_error "--fs needs ext4 or f2fs"
		case "$2" in ext4 | f2fs) FSTYP=$2 ;; *) usage_error "--fs must be ext4 or f2fs, not '$2'" ;; esac
		shift 2 ;;
	--target)
		[ $# -ge 2 ] || usage_error "--target needs ufs, emmc, mcq, dm-linear or ufs-wrapped"
		case "$2" in ufs | emmc | mcq | dm-linear | ufs-wrapped) TARGET=$2 ;;
		*) usage_error "--target must be ufs, emmc, mcq, dm-linear or ufs-wrapped, not '$2'" ;; esac
		shift 2 ;;
	--kernel)
		[ $# -ge 2 ] || usage_error "--kernel needs a bzImage path"
		[ -f "$2" ] || usage_error "--kernel: no such file '$2'"
		USER_KERNEL=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
	--kernel-series)
		[ $# -ge 2 ] || usage_error "--kernel-series needs 7 or 6.12"
		SERIES=$2; shift 2 ;;
	--fscryptctl)
		[ $# -ge 2 ] || usage_error "--fscryptctl needs a binary"
		[ -x "$2" ] || usage_error "--fscryptctl: '$2' is not an executable file"
		FSCRYPTCTL=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
	--out) [ $# -ge 2 ] || usage_error "--out needs a directory"; OUT=$2; shift 2 ;;
	-g | -x)
		[ $# -ge 2 ] || usage_error "$1 needs a group name"
		[[ $2 =~ ^[A-Za-z0-9_,-]+$ ]] || usage_error "$1: '$2' is not a group name"
		CHECK+=("$1" "$2"); shift 2 ;;
	-*) usage_error "unknown option '$1' (./icemu fstests --help)" ;;
	*)
		[[ $1 =~ ^[a-z0-9]+/[0-9]+$ ]] || usage_error "'$1' is not a test name like generic/548"
		CHECK+=("$1"); shift ;;
	esac
done
[ -n "$FST" ] || usage_error "which fstests tree? --fstests DIR (or ICEMU_FSTESTS=DIR)"
[ -d "$FST" ] || usage_error "--fstests: no such directory '$FST'"
[ -f "$FST/check" ] && [ -d "$FST/tests/generic" ] ||
	usage_error "--fstests: '$FST' is not an fstests tree (no check or tests/generic)"
[ ${#CHECK[@]} -gt 0 ] || CHECK=(-g encrypt)

bash "$ICEMU_ROOT/scripts/setup-host.sh" --fstests
# What a run needs (not the whole tree: the unit tests are not needed to run fstests).
do_setup >&2
QEMU_BIN=$(build_qemu)
KERNEL_IMG=$(build_kernel)
[ -x "$QEMU_BIN" ] || die "QEMU build produced no binary"
[ -f "$KERNEL_IMG" ] || die "kernel build produced no image"
kflag=(-DICEMU_KERNEL="$KERNEL_IMG")
[ -z "${USER_KERNEL:-}" ] || kflag=()
log "building icemu-shell, icemu-check and icemu-fstests-report"
# (cmake --preset reads CMakePresets.json from the current directory)
(cd "$ICEMU_ROOT" && cmake --preset default -S "$ICEMU_ROOT" -DICEMU_QEMU="$QEMU_BIN" \
	"${kflag[@]}" >/dev/null && cmake --build --preset default -j"$(nproc)" \
	--target icemu-shell icemu-check icemu-fstests-report icemu-initramfs >&2)
ROOTFS_IMG=$(build_rootfs)
TREE=$(bash "$ICEMU_ROOT/guest-tests/fstests/build-fstests.sh" "$FST" | tail -n1)
[ -f "$TREE/check" ] || die "the fstests build gave no tree ($TREE)"
BIN="$ICEMU_ROOT/build/default/guest-tests"
for t in runner/icemu-shell fstests/icemu-fstests-report; do
	[ -x "$BIN/$t" ] || die "$t was not built ($BIN/$t)"
done
CHECKER="$ICEMU_ROOT/build/default/models/checker/icemu-check"

[ -n "$OUT" ] || OUT=/tmp/icemu-fstests-$TARGET-$FSTYP-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT/share/results" "$OUT/vm"
OUT=$(cd "$OUT" && pwd)
[ -z "$(ls -A "$OUT/vm")" ] || die "--out $OUT was used before (its vm/ is not empty): pick a new one"
cp "$ICEMU_ROOT/guest-tests/fstests/guest/guest-run.sh" "$ICEMU_ROOT/guest-tests/fstests/guest/icemu-mark" "$OUT/share/"
if [ -n "$FSCRYPTCTL" ]; then
	mkdir -p "$OUT/share/bin"
	cp "$FSCRYPTCTL" "$OUT/share/bin/fscryptctl"
fi
{
	printf 'FSTYP=%q\nTARGET=%q\n' "$FSTYP" "$TARGET"
	printf 'CHECK_ARGS=%q\n' "$(printf '%q ' "${CHECK[@]}")"
} >"$OUT/share/run.env"

log "fstests ${CHECK[*]} on $TARGET ($FSTYP, -o inlinecrypt); results in $OUT"
m9p="-t 9p -o trans=virtio,version=9p2000.L,msize=262144"
gcmd="mkdir -p /mnt/icemu /mnt/fstests && mount $m9p icemu /mnt/icemu && mount $m9p,ro fstests /mnt/fstests && exec bash /mnt/icemu/guest-run.sh"
start=$(date +%s)
rc=0
"$BIN/runner/icemu-shell" --machine "$ICEMU_ROOT/guest-tests/fstests/machines/$TARGET.json" \
	--qemu "$QEMU_BIN" --kernel "$KERNEL_IMG" --rootfs "$ROOTFS_IMG" --dir "$OUT/vm" \
	--share icemu="$OUT/share" --share fstests="$TREE,ro" --no-check --quiet \
	-- "$gcmd" 2>&1 | tee "$OUT/check.log" || rc=${PIPESTATUS[0]}
wall=$(($(date +%s) - start))
case $rc in
125) log "the guest did not report a status (crash or timeout): see $OUT/vm/console.log" ;;
126) die "a crypto=on disk has no queue/crypto in the guest (see the line above)" ;;
3) die "the guest could not set up the target $TARGET (see the lines above)" ;;
esac
# The per-test event logs, verdicts, table and JUnit; the image files are large and sparse.
rrc=0
"$BIN/fstests/icemu-fstests-report" --vm "$OUT/vm" --share "$OUT/share" --checker "$CHECKER" \
	--suite "fstests.$FSTYP.$TARGET" --junit "$OUT/junit.xml" --json "$OUT/report.json" \
	--table "$OUT/table.md" || rrc=$?
rm -f "$OUT"/vm/*.img
log "wall time ${wall}s; fstests' results (xunit: result.xml) in $OUT/share/results, JUnit $OUT/junit.xml, per-test device logs and verdicts in $OUT/vm/per-test"
[ "$rrc" = 0 ] && [ "$rc" != 125 ] && exit 0
exit 1

#!/usr/bin/env bash
# ./icemu test [--kernel-series 7|6.12|6.1] [--with-fixes] [--no-asan]
# What CI runs: set up, build (QEMU, the guest kernel with and without icemu's patches, the
# Debian root filesystem, the C++ tree), run every ctest label (unit, device, upstream, guest,
# shell, vng, stock; not fuzz: ./icemu fuzz --smoke), then the unit and device labels again
# under ASan+UBSan.
#   --kernel-series S  the guest kernel of series S (docs/conformance.md "Kernel matrix")
#   --with-fixes       the guest kernel carries guest-tests/kernel/fixes and the guest label runs
#                      icemu-run --with-fixes: the known bugs' expected failures must PASS
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$ICEMU_ROOT/scripts/build-lib.sh"
asan=1
with_fixes=0
while [ $# -gt 0 ]; do
	case "$1" in
	-h | --help) usage_from_header "$0"; exit 0 ;;
	--kernel-series)
		[ $# -ge 2 ] || die "--kernel-series needs a value ($KERNEL_SERIES_HELP)"
		SERIES=$2; shift 2 ;;
	--with-fixes) with_fixes=1; KERNEL_FLAGS+=(--with-fixes); shift ;;
	--no-asan) asan=0; shift ;;
	*) die "unknown test option '$1' (try ./icemu test --help)" ;;
	esac
done
check_series
do_build
ROOTFS_IMG=$(build_rootfs)
[ -f "$ROOTFS_IMG" ] || die "the root filesystem build produced no image"
# The same kernel without icemu's patches (label "stock"); with the patched kernel's ccache
# only the patched files compile.
STOCK_IMG=""
if [ -z "${ICEMU_KERNEL:-}" ]; then
	STOCK_IMG=$(KERNEL_FLAGS=(--no-patches); build_kernel)
	[ -f "$STOCK_IMG" ] || die "the stock kernel build produced no image"
fi
cmake --preset default -S "$ICEMU_ROOT" -DICEMU_ROOTFS="$ROOTFS_IMG" \
	-DICEMU_KERNEL_STOCK="$STOCK_IMG" -DICEMU_KERNEL_SERIES="$SERIES" \
	-DICEMU_WITH_FIXES="$with_fixes" >/dev/null
rc=0
# Tests are independent (each guest test is its own VM; see guest-tests/CMakeLists.txt):
# run twice as many at once as the host has cores (a guest VM keeps about a third of a core
# busy, docs/performance.md "Suites"; ICEMU_JOBS overrides).
jobs=${ICEMU_JOBS:-$((2 * $(nproc)))}
# Label "fuzz" has its own CI job (./icemu fuzz --smoke): its cold clang build (about 30 min)
# on top of this job's cold builds would not fit CI's 90 minutes.
log "running ctest (every label but fuzz, -j$jobs)"
ctest --preset default -LE fuzz -j"$jobs" || rc=$?
if [ "$asan" = 1 ]; then
	configure_cpp asan "$QEMU_BIN" "$KERNEL_IMG"
	log "running ctest -L 'unit|device' under ASan+UBSan"
	ctest --preset asan -L 'unit|device' -j"$jobs" || rc=$?
fi
exit "$rc"

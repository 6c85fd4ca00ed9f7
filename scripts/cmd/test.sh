#!/usr/bin/env bash
# ./icemu test [--kernel-series 7|6.12] [--no-asan]
# What CI runs: set up, build, run every ctest label (unit, device, upstream, guest, shell,
# vng), then the unit and device labels again under ASan+UBSan.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$ICEMU_ROOT/scripts/build-lib.sh"
asan=1
while [ $# -gt 0 ]; do
	case "$1" in
	-h | --help) usage_from_header "$0"; exit 0 ;;
	--kernel-series)
		[ $# -ge 2 ] || die "--kernel-series needs a value (7 or 6.12)"
		SERIES=$2; shift 2 ;;
	--no-asan) asan=0; shift ;;
	*) die "unknown test option '$1' (try ./icemu test --help)" ;;
	esac
done
do_build
ROOTFS_IMG=$(build_rootfs)
[ -f "$ROOTFS_IMG" ] || die "the root filesystem build produced no image"
cmake --preset default -S "$ICEMU_ROOT" -DICEMU_ROOTFS="$ROOTFS_IMG" >/dev/null
rc=0
log "running ctest (all labels)"
ctest --preset default -j1 || rc=$?
if [ "$asan" = 1 ]; then
	configure_cpp asan "$QEMU_BIN" "$KERNEL_IMG"
	log "running ctest -L 'unit|device' under ASan+UBSan"
	ctest --preset asan -L 'unit|device' -j1 || rc=$?
fi
exit "$rc"

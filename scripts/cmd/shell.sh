#!/usr/bin/env bash
# ./icemu shell [--machine NAME | --scenario NAME] [--kernel PATH] [--stock-kernel]
#               [--kernel-series 7|6.12|6.1] [icemu-shell options] [-- CMD [ARG...]]
# Boot icemu's Debian root filesystem with the emulated controllers of a machine
# (guest-tests/machines: ufs, two-ufs, ufs-emmc, ufs-mcq, ufs-wrapped, emmc-wrapped) or of a scenario. Without CMD you
# get a console (exit or Ctrl-D powers off, Ctrl-A x kills QEMU); with CMD it runs in the
# guest, its output is printed and its exit status is ours. Afterwards: where the event logs,
# the QMP socket and the images are, and icemu-check's summary of what the device saw.
#   --kernel PATH     your bzImage (needs the options of guest-tests/kernel/icemu.config)
#   --stock-kernel    build and boot a kernel without icemu's patches; UFS controllers
#                     present Intel's Meteor Lake PCI identity
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$ICEMU_ROOT/scripts/build-lib.sh"
ARGS=()
identity=""
while [ $# -gt 0 ]; do
	case "$1" in
	-h | --help) usage_from_header "$0"; exit 0 ;;
	--kernel)
		[ $# -ge 2 ] || die "--kernel needs a bzImage path"
		[ -f "$2" ] || die "--kernel: no such file '$2'"
		USER_KERNEL=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
	--kernel-series)
		[ $# -ge 2 ] || die "--kernel-series needs a value ($KERNEL_SERIES_HELP)"
		SERIES=$2; check_series; shift 2 ;;
	--stock-kernel) KERNEL_FLAGS+=(--no-patches); identity=intel-mtl; shift ;;
	--) ARGS+=("$@"); break ;;
	*) ARGS+=("$1"); shift ;;
	esac
done
do_build >&2
ROOTFS_IMG=$(build_rootfs)
shell="$ICEMU_ROOT/build/default/guest-tests/runner/icemu-shell"
[ -x "$shell" ] || die "icemu-shell was not built ($shell)"
[ -z "$identity" ] || ARGS=(--pci-identity "$identity" ${ARGS[@]+"${ARGS[@]}"})
exec "$shell" --qemu "$QEMU_BIN" --kernel "$KERNEL_IMG" --rootfs "$ROOTFS_IMG" \
	${ARGS[@]+"${ARGS[@]}"}

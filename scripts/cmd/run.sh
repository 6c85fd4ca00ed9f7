#!/usr/bin/env bash
# ./icemu run [--kernel-series 7|6.12|6.1] [--stock-kernel] [--with-fixes] [icemu-run options...]
# The main job: set up, build QEMU, the guest kernel and the C++ tree, boot the default
# conformance scenarios and print the report (TAP on stdout, progress on stderr).
#   --kernel-series 6.12   Linux 6.12 LTS instead of 7.x (also: ICEMU_KERNEL_SERIES); 6.1 for
#                          Linux 6.1 LTS
#   --with-fixes           a kernel with guest-tests/kernel/fixes (the fixes of the kernel bugs
#                          the suite found), and icemu-run --with-fixes: their expected
#                          failures must pass
#   --stock-kernel         a kernel WITHOUT icemu's patches: the UFS controllers present
#                          Intel's Meteor Lake PCI identity, which mainline ufshcd-pci drives
#                          with inline crypto (eMMC scenarios are skipped: no mainline
#                          sdhci-pci identity enables eMMC crypto; see docs/developer-loop.md)
# Other options go to icemu-run (--scenario NAME, --keep, --junit FILE, ...; see its --help).
# Scenarios run side by side, twice as many vCPUs at once as the host has cores (a scenario
# VM keeps about a third of a core busy: boot, synchronous I/O, step round trips; measured
# in docs/performance.md); ICEMU_JOBS or --jobs N overrides. Only the C++ targets the run
# needs are built (the runner, the checker, the guest initramfs); ./icemu build builds all.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$ICEMU_ROOT/scripts/build-lib.sh"
RUNNER_ARGS=(--jobs "${ICEMU_JOBS:-$((2 * $(nproc)))}")
CPP_TARGETS=(icemu-run icemu-check icemu-initramfs)
while [ $# -gt 0 ]; do
	case "$1" in
	-h | --help) usage_from_header "$0"; exit 0 ;;
	--kernel-series)
		[ $# -ge 2 ] || die "--kernel-series needs a value ($KERNEL_SERIES_HELP)"
		SERIES=$2; shift 2 ;;
	--stock-kernel) KERNEL_FLAGS+=(--no-patches); RUNNER_ARGS+=(--pci-identity intel-mtl); shift ;;
	--with-fixes) KERNEL_FLAGS+=(--with-fixes); RUNNER_ARGS+=(--with-fixes); shift ;;
	*) RUNNER_ARGS+=("$1"); shift ;;
	esac
done
check_series
do_build
runner="$ICEMU_ROOT/build/default/guest-tests/runner/icemu-run"
[ -x "$runner" ] || die "the runner was not built ($runner)"
exec "$runner" --qemu "$QEMU_BIN" --kernel "$KERNEL_IMG" ${RUNNER_ARGS[@]+"${RUNNER_ARGS[@]}"}

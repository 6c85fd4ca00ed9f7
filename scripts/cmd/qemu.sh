#!/usr/bin/env bash
# ./icemu qemu [--print-path] [QEMU ARGS...]
# Exec the QEMU that icemu built (building it first if needed) with your arguments, e.g.
#   ./icemu qemu -device ufs,help
#   ./icemu qemu -M q35 -accel kvm -kernel bzImage ... -device ufs,id=ufs0,crypto=on \
#       -drive if=none,id=lu0,file=lu0.img,format=raw -device ufs-lu,bus=ufs0,lun=0,drive=lu0
# --print-path prints the binary's path (for virtme-ng's --qemu, or your own scripts).
# It has KVM (when /dev/kvm is usable; pass -accel kvm), TCG, virtfs (9p), vhost-user
# (virtiofs with an external virtiofsd), virtio serial/console/rng/net/scsi, slirp (-nic user).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$ICEMU_ROOT/scripts/build-lib.sh"
case "${1:-}" in
-h | --help) usage_from_header "$0"; exit 0 ;;
esac
if [ -n "${ICEMU_QEMU:-}" ]; then
	BIN=$ICEMU_QEMU
elif [ "${1:-}" = --print-path ] &&
	BIN=$(bash "$ICEMU_ROOT/hw/build-qemu.sh" --print-path 2>/dev/null); then
	:
else
	# An up-to-date build is a no-op for ninja (a few seconds); never exec a stale binary.
	do_setup
	BIN=$(bash "$ICEMU_ROOT/hw/build-qemu.sh" 2>/dev/null | tail -n1) ||
		die "the QEMU build failed: run ./icemu build to see why"
fi
[ -x "$BIN" ] || die "no QEMU binary at '$BIN'"
if [ "${1:-}" = --print-path ]; then
	[ $# -eq 1 ] || die "--print-path takes no other arguments"
	echo "$BIN"
	exit 0
fi
exec "$BIN" "$@"

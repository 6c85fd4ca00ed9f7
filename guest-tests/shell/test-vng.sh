#!/usr/bin/env bash
# ctest label "vng": virtme-ng boots a kernel with icemu's QEMU and a UFS controller added
# through --qemu-opts, exactly as docs/developer-loop.md tells a user to, and the guest's
# blk-crypto sees the emulated engine.
#   test-vng.sh QEMU KERNEL ICEMU_RUN
set -euo pipefail
QEMU=$1 KERNEL=$2 RUN=$3
command -v vng >/dev/null || { echo "SKIP: vng (virtme-ng) is not installed"; exit 77; }
WORK=$(mktemp -d /tmp/icemu-vng-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
truncate -s 64M "$WORK/lu0.img"
# vng uses KVM whenever /dev/kvm exists, but a nested hypervisor may still refuse what QEMU
# sets up for -cpu host (QEMU aborts: "failed to set MSR 0x10a") or never run the guest: ask
# icemu-run which accelerator it would use for this QEMU and kernel and tell vng to use TCG
# when it says so.
kvm=()
accel=$("$RUN" --qemu "$QEMU" --kernel "$KERNEL" --print-accel) || { echo "FAIL: $RUN --print-accel failed"; exit 1; }
[ "$accel" = kvm ] || kvm=(--disable-kvm)
# vng shares the host's root over 9p (virtiofs when virtiofsd is installed) and runs the
# command as the calling user; microvm has no PCI, so the UFS needs q35 (--disable-microvm).
out=$(cd "$WORK" && timeout 600 vng --run "$KERNEL" --qemu "$QEMU" ${kvm[@]+"${kvm[@]}"} --disable-microvm \
	--memory 1G --qemu-opts="-device ufs,id=ufs0,crypto=on,crypto-keyslots=5 \
-drive if=none,id=lu0,file=$WORK/lu0.img,format=raw -device ufs-lu,bus=ufs0,lun=0,drive=lu0" \
	-- cat /sys/block/sda/queue/crypto/num_keyslots 2>"$WORK/vng.err") || {
	echo "FAIL: vng exited $?; stderr:"; tail -30 "$WORK/vng.err"; exit 1
}
out=$(tr -d '\r' <<<"$out" | tail -n1)
[ "$out" = 5 ] || { echo "FAIL: queue/crypto/num_keyslots is '$out', expected 5"; tail -30 "$WORK/vng.err"; exit 1; }
echo "ok: vng saw the emulated UFS engine (num_keyslots=$out)"

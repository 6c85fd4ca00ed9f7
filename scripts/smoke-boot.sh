#!/usr/bin/env bash
# Boot the guest kernel on icemu's QEMU with one crypto-enabled UFS controller and print
# what the kernel reports for it (probe lines and /sys/block/*/queue/crypto/*).
#   smoke-boot.sh QEMU BZIMAGE [crypto=on|off]
# Exit status: 0 if the guest reached its init and the UFS disk appeared (and, with
# crypto=on, the kernel registered an inline-crypto profile for it).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
qemu=${1:?qemu binary}
kernel=${2:?bzImage}
crypto=${3:-on}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root/bin" "$work/root/dev" "$work/root/proc" "$work/root/sys"
cp /bin/busybox "$work/root/bin/busybox"
cat >"$work/root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
echo "icemu-smoke: init reached, uptime $(cut -d' ' -f1 /proc/uptime)s"
for d in /sys/block/sd*; do
	[ -e "$d" ] || continue
	echo "icemu-smoke: disk $(basename $d) $(cat $d/size) sectors"
	if [ -d "$d/queue/crypto" ]; then
		for f in $(find $d/queue/crypto -type f | sort); do
			echo "icemu-smoke: ${f#/sys/block/}=$(cat $f)"
		done
	else
		echo "icemu-smoke: $(basename $d)/queue/crypto absent"
	fi
done
dmesg | grep -i -E 'ufs|crypto' | sed 's/^/icemu-smoke: dmesg: /'
echo "icemu-smoke: done"
poweroff -f
INIT
chmod +x "$work/root/init"
(cd "$work/root" && find . | cpio -o -H newc --quiet | gzip -1 >"$work/initrd.gz")
truncate -s 64M "$work/lu0.img"

props="serial=icemu0"
if [ "$crypto" = on ]; then
	props="$props,crypto=on"
fi
log "booting $(basename "$kernel") on $(basename "$qemu") with ufs,$props"
start=$(date +%s.%N)
timeout 300 "$qemu" -M q35 -accel tcg -nodefaults -display none -no-reboot -m 256M \
	-serial stdio -kernel "$kernel" -initrd "$work/initrd.gz" \
	-append "console=ttyS0 panic=-1 no_timer_check loglevel=4" \
	-device "ufs,id=ufs0,$props" \
	-drive "if=none,id=lu0,file=$work/lu0.img,format=raw" \
	-device ufs-lu,bus=ufs0,lun=0,drive=lu0 >"$work/console.log" 2>&1 || true
end=$(date +%s.%N)
grep '^icemu-smoke:' "$work/console.log" || true
printf 'icemu-smoke: wall time %.1fs\n' "$(echo "$end - $start" | bc)"
grep -q 'icemu-smoke: init reached' "$work/console.log" || {
	tail -n 40 "$work/console.log"
	die "the guest never reached its init"
}
grep -q 'icemu-smoke: disk sd' "$work/console.log" || die "no UFS disk appeared in the guest"
if [ "$crypto" = on ]; then
	grep -q 'queue/crypto/num_keyslots=' "$work/console.log" ||
		die "the kernel registered no inline-crypto profile for the UFS disk"
fi

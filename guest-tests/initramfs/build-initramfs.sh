#!/usr/bin/env bash
# Build the guest initramfs: busybox-static, the static icemu-guest program, mke2fs and
# mkfs.f2fs with the shared libraries they need (copied via ldd), and /etc/mke2fs.conf, as a
# gzip'd cpio.
#
#   build-initramfs.sh OUT.cpio.gz GUEST_BINARY
#
# Host needs: busybox-static (/bin/busybox), e2fsprogs (mke2fs), f2fs-tools (mkfs.f2fs), cpio,
# gzip.
set -euo pipefail
OUT=$1
GUEST=$2
HERE=$(cd "$(dirname "$0")" && pwd)
BUSYBOX=${ICEMU_BUSYBOX:-/bin/busybox}
MKE2FS=${ICEMU_MKE2FS:-$(command -v mke2fs || echo /usr/sbin/mke2fs)}
MKF2FS=${ICEMU_MKF2FS:-$(command -v mkfs.f2fs || echo /usr/sbin/mkfs.f2fs)}

die() { echo "build-initramfs: $*" >&2; exit 1; }
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found (apt-get install busybox-static)"
file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked' ||
	ldd "$BUSYBOX" 2>&1 | grep -q 'not a dynamic' || die "$BUSYBOX is not static (need busybox-static)"
[ -x "$MKE2FS" ] || die "mke2fs not found (apt-get install e2fsprogs)"
[ -x "$MKF2FS" ] || die "mkfs.f2fs not found (apt-get install f2fs-tools)"
[ -x "$GUEST" ] || die "guest program $GUEST not built"

STAGE=$(mktemp -d "${OUT}.stage.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE"/{bin,sbin,etc,proc,sys,dev,tmp,mnt,lib,lib64,usr/lib}
install -m 0755 "$BUSYBOX" "$STAGE/bin/busybox"
install -m 0755 "$HERE/init" "$STAGE/init"
install -m 0755 "$HERE/../rootfs/shell-init" "$STAGE/sbin/icemu-shell-init"
mkdir -p "$STAGE/share/icemu/examples"
install -m 0755 "$HERE"/../rootfs/examples/*.sh "$STAGE/share/icemu/examples/"
install -m 0755 -s "$GUEST" "$STAGE/sbin/icemu-guest"
install -m 0755 "$MKE2FS" "$STAGE/sbin/mke2fs"
install -m 0755 "$MKF2FS" "$STAGE/sbin/mkfs.f2fs"
[ -f /etc/mke2fs.conf ] && install -m 0644 /etc/mke2fs.conf "$STAGE/etc/mke2fs.conf"
ln -s /proc/mounts "$STAGE/etc/mtab"  # mke2fs checks whether the device is mounted
# shared libraries of mke2fs and mkfs.f2fs (and the dynamic loader), at their host paths
for lib in $(ldd "$MKE2FS" "$MKF2FS" | awk '/=>/ {print $3} /^\s*\/[^ ]+ \(/ {print $1}'); do
	[ -f "$lib" ] || continue
	mkdir -p "$STAGE$(dirname "$lib")"
	cp -L "$lib" "$STAGE$lib"
done
# Debian's /lib is a symlink to usr/lib; mirror both spellings of the loader path
[ -e "$STAGE/lib64/ld-linux-x86-64.so.2" ] || cp -L /lib64/ld-linux-x86-64.so.2 "$STAGE/lib64/"
# (/dev/console comes from the kernel's built-in default initramfs)
(cd "$STAGE" && find . -print0 | LC_ALL=C sort -z |
	cpio --null -o -H newc --owner=0:0 --quiet) | gzip -6 -n >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "$OUT"

#!/bin/bash
# guest-run.sh: runs inside icemu's Debian guest under ./icemu fstests. The host shares
# the run directory as 9p tag "icemu" (/mnt/icemu: run.env, results/, this script) and the
# built fstests tree as "fstests" (/mnt/fstests, read-only). It puts TEST_DEV and
# SCRATCH_DEV on the target's emulated disks, writes fstests' configuration (inlinecrypt on
# both the test and the scratch mounts, LOGGER_PROG=icemu-mark for the test boundaries) and
# runs fstests' own check; its output is the guest's output and its status is ours.
set -u
S=/mnt/icemu
F=/mnt/fstests
. "$S/run.env" # FSTYP TARGET CHECK_ARGS (bash array text)
export ICEMU_SHARE=$S

# The kernel log from boot on, for the native/fallback lines and check's per-test markers
# (dmesg --follow keeps reading when records were overwritten, where cat /dev/kmsg would
# stop; line-buffered, so nothing is lost when it is killed at the end).
stdbuf -oL dmesg --follow >"$S/dmesg.txt" 2>/dev/null &
kmsg_pid=$!

say() { echo "icemu-fstests: $*"; }
disk() {
	local d
	d=$(readlink -f "/dev/disk/icemu/$1" 2>/dev/null)
	[ -b "$d" ] || { say "disk $1 of target $TARGET did not appear"; exit 3; }
	echo "$d"
}
linear() { # NAME DISK DISK: one dm-linear device spanning both disks
	local a b sa sb
	a=$(disk "$2") || exit 3
	b=$(disk "$3") || exit 3
	sa=$(blockdev --getsz "$a")
	sb=$(blockdev --getsz "$b")
	printf '0 %s linear %s 0\n%s %s linear %s 0\n' "$sa" "$a" "$sa" "$sb" "$b" |
		dmsetup create "$1" || { say "dmsetup create $1 failed"; exit 3; }
	echo "/dev/mapper/$1"
}
case $TARGET in
ufs | mcq | ufs-wrapped) TEST=$(disk ua) && SCRATCH=$(disk ub) || exit 3 ;;
emmc) TEST=$(disk ea) && SCRATCH=$(disk eb) || exit 3 ;;
dm-linear) TEST=$(linear icemu-test ua ea) && SCRATCH=$(linear icemu-scratch ub eb) || exit 3 ;;
*) say "unknown target $TARGET"; exit 3 ;;
esac
for d in $TEST $SCRATCH; do
	b=$(lsblk -ndo KNAME "$d" 2>/dev/null) # dm-N for /dev/mapper/NAME
	if [ -d "/sys/block/$b/queue/crypto" ]; then
		say "$d ($b): queue/crypto: $(cat /sys/block/$b/queue/crypto/num_keyslots) keyslots, modes $(ls /sys/block/$b/queue/crypto/modes | tr '\n' ' ')"
	else
		say "$d ($b) has no queue/crypto: the kernel cannot use the inline engine on it"
	fi
done

# What some tests want: the fsgqa users, mount points.
for u in fsgqa fsgqa2 123456-fsgqa; do
	id "$u" >/dev/null 2>&1 || useradd -m "$u" >/dev/null 2>&1
done
mkdir -p /mnt/test /mnt/scratch "$S/results"
# --fscryptctl: the user's binary replaces icemu-guest's fscryptctl (a symlink to icemu-guest:
# remove it first, or cp would write through it).
if [ -x "$S/bin/fscryptctl" ]; then
	rm -f /usr/local/bin/fscryptctl
	cp "$S/bin/fscryptctl" /usr/local/bin/fscryptctl
fi

# No discard at mkfs. Upstream QEMU's eMMC erased 512 bytes at a time (sd_erase() in
# hw/sd/sd.c: discarding a 4 GiB eMMC took hours under TCG); icemu's series erases a
# sector-addressed eMMC in one write-zeroes request, but a discard of the whole device at
# every mkfs still costs each test time and tells nothing about inline crypto, so it stays
# off. Check's scratch mkfs gets the same through MKFS_OPTIONS.
case $FSTYP in
ext4) NODISCARD="-E nodiscard" ;;
f2fs) NODISCARD="-t 0" ;;
esac
case $FSTYP in
ext4) mkfs.ext4 -F -q $NODISCARD -O encrypt "$TEST" >/dev/null ;;
f2fs) mkfs.f2fs -f -q $NODISCARD -O encrypt,extra_attr,inode_checksum "$TEST" >/dev/null ;;
esac || { say "mkfs.$FSTYP $TEST failed"; exit 3; }

cat >/tmp/icemu-fstests.config <<CONF
export FSTYP=$FSTYP
export TEST_DEV=$TEST
export TEST_DIR=/mnt/test
export SCRATCH_DEV=$SCRATCH
export SCRATCH_MNT=/mnt/scratch
export MKFS_OPTIONS="$NODISCARD"
export MOUNT_OPTIONS="-o inlinecrypt"
export TEST_FS_MOUNT_OPTS="-o inlinecrypt"
export RESULT_BASE=$S/results
export LOGGER_PROG=$S/icemu-mark
CONF
cp /tmp/icemu-fstests.config "$S/local.config"

eval "args=($CHECK_ARGS)"
cd "$F" || { say "no fstests tree at $F"; exit 3; }
# check and its tests in a session keyring of their own: the init's children have none, and
# fstests' v1-policy tests add their keys to @s (keyctl newring xfstests @s), which then
# fails with "Required key not available".
HOST_OPTIONS=/tmp/icemu-fstests.config keyctl session icemu-fstests ./check -R xunit "${args[@]}"
rc=$?
"$S/icemu-mark" "end of check"
dmsetup remove_all >/dev/null 2>&1
sleep 1
kill "$kmsg_pid" 2>/dev/null
sync
exit $rc

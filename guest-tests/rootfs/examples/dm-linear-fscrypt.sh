#!/bin/bash
# Example for ./icemu shell --machine two-ufs: dm-linear across the two UFS controllers,
# ext4 with encryption mounted -o inlinecrypt, a v2 fscrypt policy set with xfs_io, a file
# that spans both controllers written and read back, then the key removed and everything
# torn down (so no keyslot on either controller may still hold the key).
#   dm-linear-fscrypt.sh [keep-mounted]
set -euo pipefail
keep=${1:-}
a=/dev/disk/icemu/ua b=/dev/disk/icemu/ub
sa=$(blockdev --getsz "$a")
sb=$(blockdev --getsz "$b")
printf '0 %d linear %s 0\n%d %d linear %s 0\n' "$sa" "$a" "$sa" "$sb" "$b" | dmsetup create lin
dm=$(dmsetup info -c --noheadings -o blkdevname lin)
echo "dm-linear $dm over $(readlink -f "$a") + $(readlink -f "$b"):"
for f in max_dun_bits num_keyslots modes/AES-256-XTS; do
	echo "  queue/crypto/$f = $(cat "/sys/block/$dm/queue/crypto/$f")"
done
mkfs.ext4 -q -F -O encrypt /dev/mapper/lin
mount -o inlinecrypt /dev/mapper/lin /mnt
id=$(head -c 64 /dev/urandom | xfs_io -c add_enckey /mnt | awk '{print $NF}')
echo "added key $id"
mkdir /mnt/secret
xfs_io -c "set_encpolicy $id" /mnt/secret
xfs_io -c get_encpolicy /mnt/secret
size=$(((sa + sb) * 512 * 3 / 4))
sum=$(head -c "$size" /dev/urandom | tee /mnt/secret/big | sha256sum)
sync
echo 3 >/proc/sys/vm/drop_caches
[ "$(sha256sum </mnt/secret/big)" = "$sum" ] || { echo "read-back mismatch" >&2; exit 1; }
echo "wrote and read back $((size >> 20)) MiB through the inline crypto engines"
dmesg | grep -o 'fscrypt: AES-256-XTS using .*' | sort -u || true
if [ "$keep" = keep-mounted ]; then
	exit 0
fi
xfs_io -c "rm_enckey $id" /mnt
umount /mnt
dmsetup remove lin
echo "key removed, unmounted, dm device removed"

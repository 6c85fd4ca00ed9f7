#!/bin/bash
# fscryptctl in the icemu shell (`./icemu shell -- bash /usr/local/lib/icemu/examples/fscryptctl.sh`,
# also ctest shell.fscryptctl): icemu's fscryptctl (icemu-guest under that name, the commands
# fstests calls) next to xfs_io. Adds and removes a key, shows that bad input is refused, and
# imports a hardware-wrapped key where the controller offers them. One "ok" line per check.
set -euo pipefail
dev=${1:-/dev/disk/icemu/ua}
mnt=/mnt/fscryptctl
fail() { echo "FAIL: $*"; exit 1; }
fscryptctl --help | grep -q import_hw_wrapped_key || fail "--help lists no import_hw_wrapped_key (fstests would skip)"
mkfs.ext4 -q -F -O encrypt "$dev"
mkdir -p "$mnt"
mount -o inlinecrypt "$dev" "$mnt"
head -c 64 /dev/urandom >/tmp/k64
id=$(fscryptctl add_key "$mnt" </tmp/k64)
xid=$(xfs_io -c add_enckey "$mnt" </tmp/k64 | sed -n 's/.*identifier \([0-9a-f]*\).*/\1/p')
[ -n "$id" ] && [ "$id" = "$xid" ] || fail "fscryptctl add_key printed '$id', xfs_io add_enckey '$xid'"
echo "ok add_key identifier $id equals xfs_io's"
fscryptctl remove_key "$id" "$mnt"
xfs_io -c "enckey_status $id" "$mnt" | grep -q Absent || fail "key still present after remove_key"
echo "ok remove_key"
head -c 8 /dev/urandom >/tmp/k8
if err=$(fscryptctl add_key "$mnt" </tmp/k8 2>&1); then fail "an 8-byte key was accepted"; fi
grep -q "too short" <<<"$err" || fail "short key: '$err'"
echo "ok short key refused: $err"
if err=$(fscryptctl bogus "$mnt" 2>&1); then fail "an unknown command succeeded"; fi
echo "ok unknown command refused"
head -c 32 /dev/urandom >/tmp/k32
if [ -e /sys/block/$(basename "$(readlink -f "$dev")")/queue/crypto/hw_wrapped_keys ]; then
	lt=$(fscryptctl import_hw_wrapped_key "$dev" </tmp/k32 | base64 -w0) || fail "import failed"
	echo "ok import_hw_wrapped_key: a ${#lt}-character base64 blob"
else
	# No hardware-wrapped keys on this controller: the block layer refuses the ioctl.
	if err=$(fscryptctl import_hw_wrapped_key "$dev" </tmp/k32 2>&1); then fail "import succeeded without wrapped-key support"; fi
	grep -q "importing hardware-wrapped key: Operation not supported" <<<"$err" || fail "import: '$err'"
	echo "ok import_hw_wrapped_key refused: $err"
fi
umount "$mnt"

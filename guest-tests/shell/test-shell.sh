#!/usr/bin/env bash
# ctest label "shell": ./icemu shell and ./icemu qemu from a user's point of view.
#   test-shell.sh CASE ICEMU_SHELL QEMU KERNEL ROOTFS
# Cases: qemu-help, keyslots, exit-status, dm-fscrypt, keys-left, fscryptctl.
set -euo pipefail
case_=$1 SHELL_BIN=$2 QEMU=$3 KERNEL=$4 ROOTFS=$5
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=$(mktemp -d /tmp/icemu-shell-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
shell() { "$SHELL_BIN" --qemu "$QEMU" --kernel "$KERNEL" --rootfs "$ROOTFS" --dir "$WORK/run" \
	--timeout 300 "$@"; }
verdict() { # verdict NAME -> its status in check.json
	python3 -c 'import json,sys
v = json.load(open(sys.argv[1]))
print(next((x["status"] for x in v["verdicts"] if x["name"] == sys.argv[2]), "absent"))' \
		"$WORK/run/check.json" "$1"
}

case "$case_" in
qemu-help)
	# ./icemu qemu execs icemu's QEMU with the user's arguments.
	out=$(ICEMU_QEMU="$QEMU" "$ROOT/icemu" qemu -device ufs,help)
	grep -q '^  crypto=' <<<"$out" || fail "'./icemu qemu -device ufs,help' lists no crypto property: $out"
	[ "$(ICEMU_QEMU="$QEMU" "$ROOT/icemu" qemu --print-path)" = "$QEMU" ] || fail "--print-path"
	;;
keyslots)
	# The configured number of keyslots (machine "ufs": 8) as the guest's blk-crypto sees it.
	out=$(shell --quiet --machine ufs -- cat /sys/block/sda/queue/crypto/num_keyslots)
	[ "$out" = 8 ] || fail "num_keyslots printed '$out', expected 8"
	;;
exit-status)
	rc=0
	shell --quiet --no-check -- 'echo to-stdout; echo to-stderr >&2; exit 7' >"$WORK/out" || rc=$?
	[ "$rc" = 7 ] || fail "exit status $rc, expected the command's 7"
	grep -qx to-stdout "$WORK/out" || fail "stdout lost: $(cat "$WORK/out")"
	grep -qx to-stderr "$WORK/out" || fail "stderr lost: $(cat "$WORK/out")"
	;;
dm-fscrypt)
	# dm-linear over two UFS controllers + fscrypt with -o inlinecrypt, all with the rootfs'
	# own tools; afterwards nothing is mounted, so icemu-check must find every slot empty.
	shell --machine two-ufs -- bash -e "/usr/local/lib/icemu/examples/dm-linear-fscrypt.sh" ||
		fail "the command sequence failed (exit $?)"
	[ "$(verdict keys-evicted)" = pass ] || fail "keys-evicted is '$(verdict keys-evicted)', not pass"
	[ "$(verdict replay)" = pass ] || fail "replay is '$(verdict replay)'"
	grep -q '"ce_writes": [1-9]' "$WORK/run/check.json" || fail "no crypto writes reached the device"
	;;
keys-left)
	# The same, but the filesystem stays mounted: keys stay programmed and the verdict does not
	# apply; then a key left in a slot after unmount must FAIL (a slot programmed by hand).
	shell --machine two-ufs -- bash -e "/usr/local/lib/icemu/examples/dm-linear-fscrypt.sh" keep-mounted ||
		fail "the command sequence failed"
	[ "$(verdict keys-evicted)" = not-applicable ] || fail "keys-evicted '$(verdict keys-evicted)' with a mounted fs"
	python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); sys.exit(0 if any(c["keys_left"] for c in v["controllers"].values()) else 1)' \
		"$WORK/run/check.json" || fail "no key reported as still programmed while mounted"
	;;
fscryptctl)
	# icemu-guest as `fscryptctl` (what fstests' wrapped-key tests call): add_key's identifier
	# equals xfs_io's, remove_key removes, bad input is refused, and the wrapped-key ioctls
	# reach the block layer (refused while the controller has no wrapped keys).
	out=$(shell --quiet --no-check --machine ufs -- bash /usr/local/lib/icemu/examples/fscryptctl.sh) ||
		fail "fscryptctl checks failed: $out"
	grep -q "^ok add_key identifier" <<<"$out" || fail "no add_key check ran: $out"
	grep -q "^ok import_hw_wrapped_key" <<<"$out" || fail "no import check ran: $out"
	echo "$out"
	;;
*) fail "unknown case $case_" ;;
esac
echo "ok: $case_"

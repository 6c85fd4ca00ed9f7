#!/usr/bin/env bash
# Build the Debian root filesystem image that ./icemu shell and ./icemu fstests boot.
#
#   build-rootfs.sh [--print-path] [--help]
#
# mmdebstrap installs rootfs.conf's suite and packages from the Debian mirror the host's apt
# already uses, and the tree becomes an ext4 image (mke2fs -d: no loop mount). The image is
# cached under $ICEMU_CACHE/rootfs/<suite>-<key>/rootfs.ext4, where key hashes rootfs.conf and
# this script's RECIPE; a warm run only prints the path. icemu's own pieces (the guest tool,
# the shell init) are not in the image: the initramfs copies them in at every boot, so
# rebuilding them never rebuilds the image.
set -euo pipefail
. "$(dirname "$0")/../../scripts/lib.sh"

PRINT_ONLY=0
while [ $# -gt 0 ]; do
	case "$1" in
	--print-path) PRINT_ONLY=1; shift ;;
	-h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "build-rootfs.sh: unknown option '$1' (try --help)" ;;
	esac
done

CONF="$ICEMU_ROOT/guest-tests/rootfs/rootfs.conf"
# shellcheck source=/dev/null
. "$CONF"
# Bump RECIPE when a change to this script changes the image it builds.
RECIPE=1
KEY=$(cache_key "$RECIPE" "$CONF")
OUT="$ICEMU_CACHE/rootfs/$SUITE-$KEY"
IMG="$OUT/rootfs.ext4"

if [ -f "$IMG" ]; then
	[ "$PRINT_ONLY" = 1 ] || log "guest root filesystem is up to date: $IMG"
	echo "$IMG"
	exit 0
fi
[ "$PRINT_ONLY" = 0 ] || die "no cached root filesystem for $SUITE-$KEY; run $0 without --print-path"
command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed (run ./icemu setup)"
command -v mke2fs >/dev/null || die "mke2fs is not installed (run ./icemu setup)"

URI=$(mirror_uri)
# mmdebstrap filters every package through python3 (mmtarfilter): use Debian's, not a
# version manager's shim that costs a shell start-up per call.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
rm -rf "$OUT"
mkdir -p "$OUT"
TREE="$OUT/tree"
pkgs=$(IFS=,; echo "${PACKAGES[*]}")
# As root mmdebstrap chroots; as a user it needs user namespaces (--mode=unshare).
MODE=root
[ "$(id -u)" = 0 ] || MODE=unshare
run_logged "$OUT/mmdebstrap.log" "installing Debian $SUITE (${#PACKAGES[@]} packages) from $URI" \
	mmdebstrap --mode="$MODE" --variant=minbase --include="$pkgs" \
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
	--customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
	--customize-hook='echo icemu > "$1"/etc/hostname' \
	--customize-hook='mkdir -p "$1"/mnt/test "$1"/mnt/scratch "$1"/usr/local/lib/icemu' \
	"$SUITE" "$TREE" "deb $URI $SUITE main"

used_mb=$(du -sm "$TREE" | cut -f1)
size_mb=$((used_mb + used_mb / 4 + SLACK_MB))
run_logged "$OUT/mke2fs.log" "making a ${size_mb} MiB ext4 image" \
	mke2fs -q -F -t ext4 -L icemu-root -E root_owner=0:0 -d "$TREE" "$IMG.tmp" "${size_mb}M"
rm -rf "$TREE"
mv "$IMG.tmp" "$IMG"
# Prune other cached images of the same suite, keeping the newest two.
ls -dt "$ICEMU_CACHE/rootfs/$SUITE"-* 2>/dev/null | tail -n +3 | xargs -r rm -rf
log "guest root filesystem: $IMG (${size_mb} MiB)"
echo "$IMG"

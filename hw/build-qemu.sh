#!/usr/bin/env bash
# Build icemu's QEMU: Debian's qemu 10.0.x source + our patch series (hw/patches, applied
# with git am; every file of ours is added by the patch that introduces it), configured
# minimal, built with ninja + ccache.
#
#   build-qemu.sh [--print-path] [--tests]
#
# Prints the path of the qemu-system-x86_64 binary on stdout. --tests also builds QEMU's
# qos-test (the upstream peer suite). Cached under $ICEMU_CACHE/qemu/<version>-<key>/ where
# key hashes RECIPE (a number bumped by hand when this script's configure flags or steps
# change), hw/qemu-version and the patch series: an edited patch is a new key, a fresh tree
# and a build that mostly hits ccache. To edit the series, see hw/series.sh.
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
. "$(dirname "$0")/qemu-source.sh"

PRINT_ONLY=0
WANT_TESTS=0
while [ $# -gt 0 ]; do
	case "$1" in
	--print-path) PRINT_ONLY=1; shift ;;
	--tests) WANT_TESTS=1; shift ;;
	*) die "unknown option $1" ;;
	esac
done

VER=$(resolve_version)
UPVER=${VER#*:}
UPVER=${UPVER%%+*}
# Bump RECIPE when a change to this script changes the build (configure options, steps).
RECIPE=3
KEY=$(cache_key "$RECIPE" "$HW/qemu-version" "${PATCHES[@]}")
TOP="$ICEMU_CACHE/qemu/$UPVER-$KEY"
SRC="$TOP/src"
BUILD="$TOP/build"
BIN="$BUILD/qemu-system-x86_64"

if [ "$PRINT_ONLY" = 1 ]; then
	[ -x "$BIN" ] || die "QEMU is not built yet for key $UPVER-$KEY; run $0"
	echo "$BIN"
	exit 0
fi

prepare_tree "$TOP" "$SRC" "$VER" "${PATCHES[@]}"

export CCACHE_BASEDIR="$TOP" CCACHE_NOHASHDIR=true
if [ ! -f "$BUILD/build.ninja" ]; then
	mkdir -p "$BUILD"
	run_logged "$TOP/configure.log" "configuring QEMU $UPVER" \
		env -C "$BUILD" CC="ccache gcc" "$SRC/configure" "${QEMU_CONFIGURE_FLAGS[@]}"
fi
TARGETS=(qemu-system-x86_64)
[ "$WANT_TESTS" = 0 ] || TARGETS+=(tests/qtest/qos-test)
run_logged "$TOP/build.log" "building ${TARGETS[*]}" ninja -C "$BUILD" "${TARGETS[@]}"

# Firmware from the build tree: QEMU relocates --firmwarepath into <build>/qemu-bundle, so
# link Debian's SeaBIOS there; the option ROMs (linuxboot_dma.bin for -kernel) are built
# from source into the bundle's data directory.
if [ ! -f "$BUILD/.firmware" ]; then
	mkdir -p "$BUILD/qemu-bundle/usr/share/seabios"
	ln -sf /usr/share/seabios/* "$BUILD/qemu-bundle/usr/share/seabios/"
	run_logged "$TOP/optionrom.log" "building option ROMs" make -C "$BUILD" pc-bios/optionrom/all
	datadir="$BUILD/qemu-bundle/usr/local/share/qemu"
	mkdir -p "$datadir"
	for rom in "$BUILD"/pc-bios/optionrom/*.bin; do
		ln -sf "$rom" "$datadir/"
	done
	touch "$BUILD/.firmware"
fi
ls -dt "$ICEMU_CACHE/qemu/$UPVER"-* 2>/dev/null | tail -n +3 | xargs -r rm -rf
echo "$BIN"

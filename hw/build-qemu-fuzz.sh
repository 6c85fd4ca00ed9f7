#!/usr/bin/env bash
# Build QEMU's libFuzzer binary (qemu-fuzz-x86_64, whose generic-fuzz target ./icemu fuzz
# runs) from the same source as hw/build-qemu.sh: Debian's QEMU + our patch series, but
# configured with clang, --enable-fuzzing and ASan + UBSan, x86_64-softmmu only.
#
#   build-qemu-fuzz.sh [--print-path]
#
# Prints the path of qemu-fuzz-x86_64 on stdout. Cached under
# $ICEMU_CACHE/qemu-fuzz/<version>-<key>/ where key hashes RECIPE, hw/qemu-version, the patch
# series and the configure flags below; the two newest keys are kept. Needs clang-14 and
# libclang-rt-14-dev (scripts/setup-host.sh --fuzz).
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
. "$(dirname "$0")/qemu-source.sh"

PRINT_ONLY=0
while [ $# -gt 0 ]; do
	case "$1" in
	--print-path) PRINT_ONLY=1; shift ;;
	-h | --help) sed -n '2,/^[^#]/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1 (try --help)" ;;
	esac
done

# The device set and host features of the normal build (icemu.mak names virtio-9p and
# vhost-user-fs, which need virtfs and vhost-user), less what fuzzing never uses (KVM,
# slirp, debug info beyond line tables), plus clang, libFuzzer and the sanitizers.
FUZZ_CONFIGURE_FLAGS=()
for f in "${QEMU_CONFIGURE_FLAGS[@]}"; do
	case "$f" in
	--enable-kvm | --enable-slirp) ;;
	*) FUZZ_CONFIGURE_FLAGS+=("$f") ;;
	esac
done
FUZZ_CONFIGURE_FLAGS+=(
	--disable-kvm --disable-slirp
	--cc="ccache clang-14" --cxx="ccache clang++-14" --objcc="ccache clang-14"
	--enable-fuzzing --enable-asan --enable-ubsan
	--extra-cflags=-gline-tables-only
)

VER=$(resolve_version)
UPVER=${VER#*:}
UPVER=${UPVER%%+*}
# Bump RECIPE when a change to this script changes the build steps (the flags are hashed).
RECIPE=1
KEY=$({
	cache_key "$RECIPE" "$HW/qemu-version" "${PATCHES[@]}"
	printf '%s\n' "${FUZZ_CONFIGURE_FLAGS[@]}"
} | sha256sum | cut -c1-16)
TOP="$ICEMU_CACHE/qemu-fuzz/$UPVER-$KEY"
SRC="$TOP/src"
BUILD="$TOP/build"
BIN="$BUILD/qemu-fuzz-x86_64"

if [ "$PRINT_ONLY" = 1 ]; then
	[ -x "$BIN" ] || die "the fuzzing QEMU is not built yet for key $UPVER-$KEY; run $0"
	echo "$BIN"
	exit 0
fi

command -v clang-14 >/dev/null ||
	die "clang-14 is not installed: run scripts/setup-host.sh --fuzz (or ./icemu fuzz)"

prepare_tree "$TOP" "$SRC" "$VER" "${PATCHES[@]}"

export CCACHE_BASEDIR="$TOP" CCACHE_NOHASHDIR=true
if [ ! -f "$BUILD/build.ninja" ]; then
	mkdir -p "$BUILD"
	run_logged "$TOP/configure.log" "configuring QEMU $UPVER for fuzzing (clang, ASan, UBSan)" \
		env -C "$BUILD" "$SRC/configure" "${FUZZ_CONFIGURE_FLAGS[@]}"
fi
run_logged "$TOP/build.log" "building qemu-fuzz-x86_64" ninja -C "$BUILD" -j"$(nproc)" qemu-fuzz-x86_64
# The q35 machine loads SeaBIOS even under the qtest accelerator; QEMU run from its build tree
# looks for firmware in <build>/qemu-bundle (as in hw/build-qemu.sh).
if [ ! -f "$BUILD/.firmware" ]; then
	mkdir -p "$BUILD/qemu-bundle/usr/share/seabios"
	ln -sf /usr/share/seabios/* "$BUILD/qemu-bundle/usr/share/seabios/"
	touch "$BUILD/.firmware"
fi
ls -dt "$ICEMU_CACHE/qemu-fuzz/$UPVER"-* 2>/dev/null | tail -n +3 | xargs -r rm -rf
echo "$BIN"

#!/usr/bin/env bash
# Build icemu's QEMU: Debian's qemu 10.0.x source + our hook patches (hw/patches) + our own
# files (hw/qemu-overlay), configured minimal, built with ninja + ccache.
#
#   build-qemu.sh [--print-path] [--tests]
#
# Prints the path of the qemu-system-x86_64 binary on stdout. --tests also builds QEMU's
# qos-test (the upstream peer suite). Cached under $ICEMU_CACHE/qemu/<version>-<key>/ where
# key hashes RECIPE (a number bumped by hand when this script's configure flags or steps
# change), hw/qemu-version, the patch series and the device list (icemu.mak); our overlay files
# are synced on every run, so editing one of them is an incremental rebuild.
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"

PRINT_ONLY=0
WANT_TESTS=0
while [ $# -gt 0 ]; do
	case "$1" in
	--print-path) PRINT_ONLY=1; shift ;;
	--tests) WANT_TESTS=1; shift ;;
	*) die "unknown option $1" ;;
	esac
done

HW="$ICEMU_ROOT/hw"
# shellcheck source=/dev/null
. "$HW/qemu-version"
PATCHES=("$HW"/patches/*.patch)
[ -e "${PATCHES[0]}" ] || PATCHES=()
OVERLAY="$HW/qemu-overlay"
CONFIGURE_FLAGS=(
	--python=/usr/bin/python3
	--target-list=x86_64-softmmu
	--without-default-features --without-default-devices
	--with-devices-x86_64=icemu
	--enable-tcg --enable-gcrypt
	# A developer's own QEMU command line (./icemu qemu, virtme-ng): KVM where /dev/kvm
	# works, virtfs (9p) and vhost-user (virtiofs) for a shared root, slirp for -nic user.
	--enable-kvm --enable-virtfs --enable-attr --enable-vhost-user --enable-slirp
	--disable-docs --disable-tools --disable-install-blobs --disable-download
	--disable-debug-info
	--firmwarepath=/usr/share/seabios
)

# Which Debian source version to use: the pin if the mirror has it, else the newest 10.0.x.
resolve_version() {
	local have
	have=$(apt-cache showsrc qemu 2>/dev/null | awk '/^Version:/ {print $2}' | sort -uV)
	if grep -qxF "$QEMU_DEB_VERSION" <<<"$have"; then
		echo "$QEMU_DEB_VERSION"
		return
	fi
	local alt
	alt=$(grep -E "^(1:)?${QEMU_SERIES//./\\.}\.[0-9]+" <<<"$have" | tail -n1 || true)
	[ -n "$alt" ] || die "no QEMU $QEMU_SERIES.x source package on the mirror (apt-cache showsrc qemu lists: $(echo $have)); run scripts/setup-host.sh, which adds trixie deb-src"
	log "pinned qemu $QEMU_DEB_VERSION is not on the mirror; using $alt"
	echo "$alt"
}

fetch_source() {
	local ver=$1 dir="$ICEMU_CACHE/downloads/qemu"
	local plain=${ver#*:}
	local dsc="$dir/qemu_${plain}.dsc"
	mkdir -p "$dir"
	if [ ! -f "$dsc" ]; then
		log "downloading Debian source qemu $ver"
		(cd "$dir" && apt-get source --download-only -qq "qemu=$ver" 2>&1 | { grep -v unsandboxed >&2 || true; }) ||
			die "could not download the qemu $ver source package"
	fi
	# Verify every file the .dsc lists against its SHA-256.
	local sum size name
	while read -r sum size name; do
		[ -f "$dir/$name" ] || die "$name (listed in $dsc) is missing"
		echo "$sum  $dir/$name" | sha256sum -c --quiet - || die "checksum mismatch for $name"
	done < <(awk '/^Checksums-Sha256:/ {on=1; next} /^[^ ]/ {on=0} on && NF == 3 {print}' "$dsc")
	echo "$dsc"
}

VER=$(resolve_version)
UPVER=${VER#*:}
UPVER=${UPVER%%+*}
# Bump RECIPE when a change to this script changes the build (configure options, steps).
RECIPE=2
KEY=$(cache_key "$RECIPE" "$HW/qemu-version" "${PATCHES[@]}" "$OVERLAY/configs/devices/x86_64-softmmu/icemu.mak")
TOP="$ICEMU_CACHE/qemu/$UPVER-$KEY"
SRC="$TOP/src"
BUILD="$TOP/build"
BIN="$BUILD/qemu-system-x86_64"

if [ "$PRINT_ONLY" = 1 ]; then
	[ -x "$BIN" ] || die "QEMU is not built yet for key $UPVER-$KEY; run $0"
	echo "$BIN"
	exit 0
fi

if [ ! -f "$TOP/.prepared" ]; then
	DSC=$(fetch_source "$VER")
	DIR=$(dirname "$DSC")
	rm -rf "$TOP"
	mkdir -p "$SRC"
	log "unpacking QEMU $UPVER"
	ORIG=$(awk '/^Checksums-Sha256:/ {on=1; next} /^[^ ]/ {on=0} on && $3 ~ /orig\.tar/ {print $3}' "$DSC")
	DEBTAR=$(awk '/^Checksums-Sha256:/ {on=1; next} /^[^ ]/ {on=0} on && $3 ~ /debian\.tar/ {print $3}' "$DSC")
	tar -xJf "$DIR/$ORIG" -C "$SRC" --strip-components=1
	# The +ds tarball has the edk2 images stripped; Debian's own patch stops meson from
	# trying to unpack them.
	tar -xJOf "$DIR/$DEBTAR" debian/patches/skip-unpack-edk2-blobs.patch | patch -s -p1 -d "$SRC" ||
		die "Debian's skip-unpack-edk2-blobs.patch does not apply"
	(
		cd "$SRC"
		git init -q -b base .
		git -c user.name=icemu -c user.email=icemu@localhost add -A
		git -c user.name=icemu -c user.email=icemu@localhost commit -q -m "QEMU $VER (Debian source)"
		for p in "${PATCHES[@]}"; do
			log "applying $(basename "$p")"
			git -c user.name=icemu -c user.email=icemu@localhost am -q --keep-cr "$p" ||
				die "patch $(basename "$p") does not apply to QEMU $VER"
		done
	)
	touch "$TOP/.prepared"
fi

# Our own files: synced every time (checksum-based, so untouched files keep their mtime).
rsync -rc "$OVERLAY"/ "$SRC"/

export CCACHE_BASEDIR="$TOP" CCACHE_NOHASHDIR=true
if [ ! -f "$BUILD/build.ninja" ]; then
	mkdir -p "$BUILD"
	run_logged "$TOP/configure.log" "configuring QEMU $UPVER" \
		env -C "$BUILD" CC="ccache gcc" "$SRC/configure" "${CONFIGURE_FLAGS[@]}"
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

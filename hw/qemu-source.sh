# The Debian QEMU source and how icemu configures it, shared by hw/build-qemu.sh and
# hw/series.sh (sourced after scripts/lib.sh, not executed).
# shellcheck shell=bash

HW="$ICEMU_ROOT/hw"
# shellcheck source=/dev/null
. "$HW/qemu-version"
PATCHES=("$HW"/patches/*.patch)
[ -e "${PATCHES[0]}" ] || PATCHES=()
GIT_ID=(-c user.name=icemu -c user.email=icemu@localhost)

QEMU_CONFIGURE_FLAGS=(
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
	# the pin, once downloaded, needs no apt-cache query (seconds under load)
	if [ -f "$ICEMU_CACHE/downloads/qemu/qemu_${QEMU_DEB_VERSION#*:}.dsc" ]; then
		echo "$QEMU_DEB_VERSION"
		return
	fi
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

# unpack_source VERSION DIR: Debian's source of QEMU VERSION as a git repository in DIR
# (branch "icemu", one commit tagged "base"), ready for `git am` of the series.
unpack_source() {
	local ver=$1 src=$2 dsc dir orig debtar
	dsc=$(fetch_source "$ver")
	dir=$(dirname "$dsc")
	mkdir -p "$src"
	log "unpacking QEMU ${ver#*:}"
	orig=$(awk '/^Checksums-Sha256:/ {on=1; next} /^[^ ]/ {on=0} on && $3 ~ /orig\.tar/ {print $3}' "$dsc")
	debtar=$(awk '/^Checksums-Sha256:/ {on=1; next} /^[^ ]/ {on=0} on && $3 ~ /debian\.tar/ {print $3}' "$dsc")
	tar -xJf "$dir/$orig" -C "$src" --strip-components=1
	# The +ds tarball has the edk2 images stripped; Debian's own patch stops meson from
	# trying to unpack them.
	tar -xJOf "$dir/$debtar" debian/patches/skip-unpack-edk2-blobs.patch | patch -s -p1 -d "$src" ||
		die "Debian's skip-unpack-edk2-blobs.patch does not apply"
	git -C "$src" init -q -b icemu .
	git -C "$src" "${GIT_ID[@]}" add -A
	git -C "$src" "${GIT_ID[@]}" commit -q -m "QEMU $ver (Debian source)"
	git -C "$src" tag base
}

# apply_patches DIR PATCH...: git am each patch onto DIR's HEAD, naming the one that fails.
apply_patches() {
	local src=$1 p
	shift
	for p in "$@"; do
		log "applying $(basename "$p")"
		git -C "$src" "${GIT_ID[@]}" am -q --keep-cr "$p" || {
			git -C "$src" am --abort 2>/dev/null || true
			die "patch $(basename "$p") does not apply"
		}
	done
}

# prepare_tree TOP SRC VERSION PATCH...: once per cache entry TOP, the Debian source in SRC with
# the patches applied (TOP/.prepared marks it done; an interrupted preparation starts over).
prepare_tree() {
	local top=$1 src=$2 ver=$3
	shift 3
	[ ! -f "$top/.prepared" ] || return 0
	rm -rf "$top"
	unpack_source "$ver" "$src"
	apply_patches "$src" "$@"
	touch "$top/.prepared"
}

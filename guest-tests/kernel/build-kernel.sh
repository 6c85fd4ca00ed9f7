#!/usr/bin/env bash
# Build icemu's guest kernel from Debian's linux-source package (or a tree you bring).
#
#   build-kernel.sh [--series 7|6.12|6.1] [--source DIR] [--exclude-patch NAME]... [--no-patches]
#                   [--with-fixes] [--print-path]
#
# --series 7     newest linux-source-7.x the configured apt suites offer (default); its
#                patches are the ones in patches/7.x/: the common ones (symlinks) and the
#                hardware-wrapped-key driver, which needs the 6.15+ blk-crypto key types
# --series 6.12  newest linux-source-6.12 (bookworm-security/backports or trixie)
# --series 6.1   newest linux-source-6.1 (bookworm, bookworm-security); its patches are the
#                ones in patches/6.1/ (6.1 has no QEMU UFS entry and needs sdhci-cqhci.h)
# --source DIR   use your own kernel tree instead of a Debian package (our config
#                fragments and patches are applied to a copy under the cache)
# --with-fixes   also apply the fixes for the kernel bugs the suite found (fixes/<series>/,
#                see docs/kernel-bugs.md); the patch list is part of the cache key
#
# The result is cached under $ICEMU_CACHE/kernel/<version>-<key>/bzImage, where key
# hashes our config fragments, the patches applied and the script's RECIPE (so a kernel built
# with --exclude-patch/--no-patches has its own key), and <version> of a --source tree carries
# a hash of the tree's content; a warm run only prints the path. Compiles go through ccache
# ($ICEMU_CACHE/ccache).
set -euo pipefail
. "$(dirname "$0")/../../scripts/lib.sh"

SERIES=7
SOURCE=""
PRINT_ONLY=0
WITH_FIXES=0
EXCLUDE=()
while [ $# -gt 0 ]; do
	case "$1" in
	--series) SERIES=$2; shift 2 ;;
	--source) SOURCE=$(cd "$2" && pwd); shift 2 ;;
	--print-path) PRINT_ONLY=1; shift ;;
	--exclude-patch) EXCLUDE+=("${2#patches/}"); shift 2 ;;
	--no-patches) EXCLUDE+=('*'); shift ;;
	--with-fixes) WITH_FIXES=1; shift ;;
	*) die "unknown option $1 (see the header of $0)" ;;
	esac
done

KDIR="$ICEMU_ROOT/guest-tests/kernel"
FRAGMENTS=("$KDIR/base.config" "$KDIR/inline-crypto.config" "$KDIR/icemu.config")
# SDIR: the series' directory name under patches/ and fixes/ (7.x, 6.12, 6.1).
case "$SERIES" in
7 | 7.*) SDIR=7.x ;;
6.12) SDIR=6.12 ;;
6.1) SDIR=6.1 ;;
*) die "unsupported --series $SERIES (use 7, 6.12 or 6.1)" ;;
esac
FRAGMENTS+=("$KDIR/icemu-$SDIR.config")
# A series whose tree needs other patches than the default set has its own directory.
PATCHDIR="$KDIR/patches"
[ ! -d "$KDIR/patches/$SDIR" ] || PATCHDIR="$KDIR/patches/$SDIR"
PATCHES=()
for p in "$PATCHDIR"/*.patch; do
	skip=0
	for x in ${EXCLUDE[@]+"${EXCLUDE[@]}"}; do
		# shellcheck disable=SC2053 # NAME may be a glob
		[[ $(basename "$p") == $x ]] && skip=1
	done
	if [ "$skip" = 1 ]; then
		[ "$PRINT_ONLY" = 1 ] || log "not applying $(basename "$p") (--exclude-patch/--no-patches)"
	else
		PATCHES+=("$p")
	fi
done
for x in ${EXCLUDE[@]+"${EXCLUDE[@]}"}; do
	matched=0
	# shellcheck disable=SC2053 # NAME may be a glob
	for p in "$PATCHDIR"/*.patch; do [[ $(basename "$p") == $x ]] && matched=1; done
	[ "$matched" = 1 ] || die "--exclude-patch $x matches no file in $PATCHDIR"
done
if [ "$WITH_FIXES" = 1 ]; then
	ls "$KDIR/fixes/$SDIR"/*.patch >/dev/null 2>&1 ||
		die "--with-fixes: no fixes for series $SERIES in $KDIR/fixes/$SDIR"
	for p in "$KDIR/fixes/$SDIR"/*.patch; do PATCHES+=("$p"); done
fi

# The Debian package that provides the requested series: newest version in any suite.
resolve_package() {
	local pkg
	if [ "$SERIES" = 6.12 ] || [ "$SERIES" = 6.1 ]; then
		pkg=linux-source-$SERIES
	else
		pkg=$(apt-cache pkgnames linux-source-7. 2>/dev/null | sort -V | tail -n1)
		[ -n "$pkg" ] || die "no linux-source-7.x package in the apt indexes (run scripts/setup-host.sh)"
	fi
	local ver
	ver=$(apt-cache madison "$pkg" | awk -F'|' '{gsub(/ /, "", $2); print $2}' | sort -V | tail -n1)
	[ -n "$ver" ] || die "apt knows no version of $pkg"
	echo "$pkg $ver"
}

fetch_deb() {
	local pkg=$1 ver=$2 dir="$ICEMU_CACHE/downloads"
	mkdir -p "$dir"
	local f
	f=$(ls "$dir/${pkg}_${ver//:/%3a}_all.deb" 2>/dev/null || true)
	if [ -z "$f" ]; then
		log "downloading $pkg $ver (about 170 MB)"
		(cd "$dir" && apt-get download -q "$pkg=$ver" 2>&1 | { grep -v unsandboxed >&2 || true; }) ||
			die "could not download $pkg=$ver from the mirror"
		f=$(ls "$dir/${pkg}_${ver//:/%3a}_all.deb")
	fi
	echo "$f"
}

# tree_key DIR: the kernel tree's content (scripts/lib.sh tree_content_key), without what a
# kernel build writes into it.
tree_key() {
	tree_content_key "$1" ! -name '*.o' ! -name '*.cmd' ! -name '*.ko' ! -name '*.a' \
		! -name '*.d' ! -name 'modules.order' ! -name '.tmp*' ! -name 'vmlinu*' \
		! -name 'bzImage' ! -name '.config*'
}

if [ -n "$SOURCE" ]; then
	[ -f "$SOURCE/Makefile" ] || die "$SOURCE does not look like a kernel tree"
	KVER=$(make -s -C "$SOURCE" kernelversion 2>/dev/null)
	case "$SERIES" in
	7 | 7.*)
		grep -q '^config DM_INLINECRYPT' "$SOURCE/drivers/md/Kconfig" 2>/dev/null ||
			die "your tree ($KVER) has no CONFIG_DM_INLINECRYPT, which the Linux 7.x fragments ask for: pass --series 6.12 for a tree older than 7.0 (its fragments leave dm-inlinecrypt out), or bring a tree that has drivers/md/dm-inlinecrypt.c"
		;;
	esac
	[ "$PRINT_ONLY" = 1 ] || log "hashing your tree's content for the cache key"
	SRCID="$KVER-own-$(tree_key "$SOURCE")"
else
	read -r PKG PKGVER < <(resolve_package)
	SRCID="$PKGVER"
fi
# Bump RECIPE when a change to this script changes the kernel it builds.
RECIPE=2
KEY=$(cache_key "$RECIPE" "${FRAGMENTS[@]}" ${PATCHES[@]+"${PATCHES[@]}"})
OUT="$ICEMU_CACHE/kernel/$SRCID-$KEY"
# What kind of build this is; pruning keeps the newest of each kind (below).
VARIANT=patched
[ "${#EXCLUDE[@]}" = 0 ] || VARIANT="without ${EXCLUDE[*]}"
[ "$WITH_FIXES" = 0 ] || VARIANT="$VARIANT + fixes"

if [ -f "$OUT/bzImage" ]; then
	# a use counts as new: pruning goes by the directory's time
	[ -f "$OUT/variant" ] || echo "$VARIANT" >"$OUT/variant"
	touch "$OUT"
	[ "$PRINT_ONLY" = 1 ] || log "guest kernel is up to date: $OUT/bzImage"
	echo "$OUT/bzImage"
	exit 0
fi
[ "$PRINT_ONLY" = 0 ] || die "no cached kernel for $SRCID-$KEY; run $0 without --print-path"

TREE="$OUT/linux"
rm -rf "$OUT"
mkdir -p "$OUT"
if [ -n "$SOURCE" ]; then
	log "copying your kernel tree $SOURCE"
	rsync -a --exclude .git "$SOURCE"/ "$TREE"/
else
	DEB=$(fetch_deb "$PKG" "$PKGVER")
	log "unpacking $PKG $PKGVER"
	TARBALL=$(dpkg-deb -c "$DEB" | awk '{print $NF}' | grep -E '/usr/src/linux-source-.*\.tar\.xz$')
	mkdir -p "$OUT/unpack"
	dpkg-deb --fsys-tarfile "$DEB" | tar -x -C "$OUT/unpack" "$TARBALL"
	tar -xJf "$OUT/unpack/$TARBALL" -C "$OUT/unpack"
	mv "$OUT/unpack/$(basename "$TARBALL" .tar.xz)" "$TREE"
	rm -rf "$OUT/unpack"
fi

for p in ${PATCHES[@]+"${PATCHES[@]}"}; do
	log "applying $(basename "$p")"
	patch -p1 -s -N -d "$TREE" <"$p" || die "patch $(basename "$p") does not apply to $SRCID"
done

cd "$TREE"
export KBUILD_BUILD_TIMESTAMP="2026-01-01" KBUILD_BUILD_USER=icemu KBUILD_BUILD_HOST=icemu
export CCACHE_BASEDIR="$TREE" CCACHE_NOHASHDIR=true CCACHE_SLOPPINESS=time_macros,include_file_mtime
MAKEFLAGS_ICEMU=(-j"$(nproc)" CC="ccache gcc" HOSTCC="ccache gcc")
# A minimal base: allnoconfig with our fragments as KCONFIG_ALLCONFIG (merge_config.sh -n), so
# only what the fragments ask for is built (base.config says why each line is there).
scripts/kconfig/merge_config.sh -n "${FRAGMENTS[@]}" >"$OUT/merge_config.log" 2>&1 ||
	die "merge_config.sh failed: see $OUT/merge_config.log"
make -s "${MAKEFLAGS_ICEMU[@]}" olddefconfig >/dev/null

# Every option our fragments ask for must have survived olddefconfig. An option the tree's
# Kconfig does not define at all must be listed as absent for this series by a
# "# icemu-absent: CONFIG_X ..." line of icemu-$SDIR.config (so a misspelt option, or one a
# kernel renamed, is an error rather than a silently ignored line). An option the tree defines
# but cannot give in this series (an unmet dependency) is waived by a "# icemu-waived: CONFIG_X
# reason" line; a waived option that does survive is reported too (the waiver is stale).
find . -name 'Kconfig*' -type f -print0 | xargs -0 sed -n 's/^[[:space:]]*\(menu\)\{0,1\}config[[:space:]]\{1,\}\([A-Za-z0-9_]*\).*/CONFIG_\2/p' |
	sort -u >"$OUT/kconfig-symbols"
ABSENT=$(sed -n 's/^# icemu-absent: \(CONFIG_[A-Za-z0-9_]*\).*/\1/p' "$KDIR/icemu-$SDIR.config")
WAIVED=$(sed -n 's/^# icemu-waived: \(CONFIG_[A-Za-z0-9_]*\).*/\1/p' "$KDIR/icemu-$SDIR.config")
bad=0
while IFS= read -r line; do
	opt=""
	case "$line" in
	CONFIG_*=*) opt=${line%%=*} ;;
	"# CONFIG_"*" is not set") opt=${line#\# }; opt=${opt%% *} ;;
	esac
	[ -n "$opt" ] || continue
	if grep -qx -- "$opt" "$OUT/kconfig-symbols"; then
		if grep -qx -- "$opt" <<<"$ABSENT"; then
			echo "  $opt is listed as absent in icemu-$SDIR.config but this tree defines it" >&2
			bad=1
		fi
	elif grep -qx -- "$opt" <<<"$ABSENT"; then
		continue
	else
		echo "  requested: $line   but no Kconfig of this tree defines $opt (misspelt? absent in this series: add '# icemu-absent: $opt' to icemu-$SDIR.config)" >&2
		bad=1
		continue
	fi
	if grep -qx -- "$opt" <<<"$WAIVED"; then
		if grep -qx -- "$line" .config; then
			echo "  $opt is waived in icemu-$SDIR.config but survived: drop the waiver" >&2
			bad=1
		fi
		continue
	fi
	case "$line" in
	CONFIG_*=*)
		if ! grep -qx -- "$line" .config; then
			echo "  requested: $line   got: $(grep -E "^(# )?${line%%=*}[= ]" .config || echo 'absent')" >&2
			bad=1
		fi
		;;
	"# CONFIG_"*" is not set")
		opt=${line#\# }
		opt=${opt%% *}
		if grep -q "^$opt=" .config; then
			echo "  requested: $line   got: $(grep "^$opt=" .config)" >&2
			bad=1
		fi
		;;
	esac
done < <(cat "${FRAGMENTS[@]}")
[ "$bad" = 0 ] || die "the kernel configuration lost requested options (above); fix the fragments in $KDIR"
log "configuration verified: every requested option survived olddefconfig"

run_logged "$OUT/build.log" "building Linux $(make -s kernelversion) bzImage" \
	make "${MAKEFLAGS_ICEMU[@]}" bzImage
cp arch/x86/boot/bzImage "$OUT/bzImage.tmp"
cp .config "$OUT/config"
mv "$OUT/bzImage.tmp" "$OUT/bzImage"
# Keep the tree (for incremental work) only if asked; it is ~1.5 GB.
if [ "${ICEMU_KEEP_KERNEL_TREE:-0}" != 1 ]; then
	rm -rf "$TREE"
fi
echo "$VARIANT" >"$OUT/variant"
# Prune other cached builds of the same source: keep the two newest of each variant (patched,
# stock, --with-fixes, ...), so that building one kind never evicts the kernel of another.
declare -A KEPT=()
while read -r d; do
	v=$(cat "$d/variant" 2>/dev/null || echo unknown)
	KEPT[$v]=$((${KEPT[$v]:-0} + 1))
	[ "${KEPT[$v]}" -le 2 ] || rm -rf "$d"
done < <(ls -dt "$ICEMU_CACHE/kernel/$SRCID"-* 2>/dev/null)
log "guest kernel: $OUT/bzImage"
echo "$OUT/bzImage"

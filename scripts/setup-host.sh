#!/usr/bin/env bash
# Install everything icemu needs on a Debian bookworm host. Idempotent; run as root
# (or with passwordless sudo). `--fstests` also installs what building a user's fstests
# tree needs (./icemu fstests runs it; the base set stays as it was); `--fuzz` what
# building QEMU's libFuzzer target needs (./icemu fuzz runs it). Adds bookworm-backports, trixie and trixie-backports from
# the mirror this machine already uses, pinned low so bookworm stays the default.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

STAMP_DIR="$ICEMU_CACHE/stamps"
mkdir -p "$STAMP_DIR"
# Bump when the package list below changes.
SETUP_VERSION=7
STAMP="$STAMP_DIR/setup-host-v$SETUP_VERSION"

add_suites() {
	local uri list pref
	uri=$(mirror_uri)
	list=/etc/apt/sources.list.d/icemu-extra.sources
	pref=/etc/apt/preferences.d/icemu-extra
	local want
	want=$(cat <<SRC
# Added by icemu scripts/setup-host.sh: newer toolchain pieces and source packages.
Types: deb deb-src
URIs: $uri
Suites: bookworm-backports trixie trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
)
	if [ ! -f "$list" ] || [ "$(cat "$list")" != "$want" ]; then
		log "adding bookworm-backports, trixie, trixie-backports from $uri"
		echo "$want" | $SUDO tee "$list" >/dev/null
		rm -f "$STAMP_DIR"/apt-updated
	fi
	local pwant
	pwant=$(cat <<'PIN'
# Added by icemu: keep bookworm the default; newer suites only on explicit request.
Package: *
Pin: release n=trixie
Pin-Priority: 50

Package: *
Pin: release n=trixie-backports
Pin-Priority: 50

Package: *
Pin: release n=bookworm-backports
Pin-Priority: 100
PIN
)
	if [ ! -f "$pref" ] || [ "$(cat "$pref")" != "$pwant" ]; then
		echo "$pwant" | $SUDO tee "$pref" >/dev/null
	fi
}

apt_update() {
	# Refresh at most once every 12 hours.
	if [ -z "$(find "$STAMP_DIR/apt-updated" -mmin -720 2>/dev/null)" ]; then
		log "apt-get update"
		$SUDO apt-get update -qq
		touch "$STAMP_DIR/apt-updated"
	fi
}

BOOKWORM_PKGS=(
	mmdebstrap udev
	build-essential g++ cmake ninja-build pkg-config ccache git python3 python3-venv
	clang-format xz-utils zstd ca-certificates dpkg-dev
	libcrypto++-dev nlohmann-json3-dev
	libglib2.0-dev zlib1g-dev libgcrypt20-dev lib32gcc-12-dev libattr1-dev libslirp-dev
	seabios busybox-static e2fsprogs f2fs-tools cpio
	flex bison libelf-dev bc libssl-dev kmod rsync
	openssl gnuplot-nox
)
BACKPORTS_PKGS=(catch2 meson python3-pycotap)
# virtme-ng (vng) is Python and architecture-independent; only it comes from trixie, its
# dependencies from bookworm.
TRIXIE_PKGS=(virtme-ng)
# ./icemu fstests builds the user's fstests tree on the host (fstests' README lists these;
# the binaries run in the trixie guest, whose root filesystem has the same libraries' sonames).
FSTESTS_PKGS=(autoconf automake libtool libtool-bin make gcc uuid-dev libacl1-dev
	libattr1-dev libaio-dev liburing-dev libgdbm-dev libcap-dev xfslibs-dev)

# ./icemu fuzz: QEMU built with clang; libclang-rt-14-dev has libFuzzer (clang's
# -fsanitize=fuzzer links its libclang_rt.fuzzer, so the standalone libfuzzer-14-dev is not
# needed) and the sanitizer runtimes; llvm-14 has llvm-symbolizer for symbolized reports.
FUZZ_PKGS=(clang-14 libclang-rt-14-dev llvm-14)

missing() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || echo "$p"
	done
}

main() {
	if [ "${1:-}" = --fstests ] || [ "${1:-}" = --fuzz ]; then
		local f what=fstests
		if [ "$1" = --fuzz ]; then
			what="QEMU's fuzzing build"
			f=$(missing "${FUZZ_PKGS[@]}")
		else
			f=$(missing "${FSTESTS_PKGS[@]}")
		fi
		[ -z "$f" ] && return 0
		apt_update
		log "installing what building $what needs: $(echo $f)"
		# shellcheck disable=SC2086
		$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $f
		return 0
	fi
	if [ -f "$STAMP" ] && [ -z "$(missing "${BOOKWORM_PKGS[@]}" "${BACKPORTS_PKGS[@]}" "${TRIXIE_PKGS[@]}")" ] \
		&& dpkg --compare-versions "$(dpkg-query -W -f='${Version}' meson)" ge 1.5; then
		return 0
	fi
	add_suites
	apt_update
	local m
	m=$(missing "${BOOKWORM_PKGS[@]}")
	if [ -n "$m" ]; then
		log "installing: $(echo $m)"
		$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $m
	fi
	m=$(missing "${BACKPORTS_PKGS[@]}")
	if [ -n "$m" ] || ! dpkg --compare-versions "$(dpkg-query -W -f='${Version}' meson)" ge 1.5; then
		log "installing from bookworm-backports: ${BACKPORTS_PKGS[*]}"
		$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			-t bookworm-backports "${BACKPORTS_PKGS[@]}"
	fi
	m=$(missing "${TRIXIE_PKGS[@]}")
	if [ -n "$m" ]; then
		log "installing from trixie: $m"
		# shellcheck disable=SC2086
		$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			$(printf '%s/trixie ' $m)
	fi
	touch "$STAMP"
	log "host set-up complete"
}

main "$@"

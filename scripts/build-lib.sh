# Build steps shared by the ./icemu commands (sourced after lib.sh).
# shellcheck shell=bash

SERIES=${ICEMU_KERNEL_SERIES:-7}
KERNEL_FLAGS=() # extra build-kernel.sh flags (--no-patches for --stock-kernel, --with-fixes)
CPP_TARGETS=()  # the C++ targets a command needs; empty: all of them
# The kernel series of the matrix (docs/conformance.md "Kernel matrix"); build-kernel.sh and
# the kernel rule table (models/src/kernel_rules.cpp) know the same three.
KERNEL_SERIES_HELP="7, 6.12 or 6.1"
check_series() {
	case "$SERIES" in 7 | 7.* | 6.12 | 6.1) ;; *) die "--kernel-series must be $KERNEL_SERIES_HELP, not '$SERIES'" ;; esac
}

do_setup() { bash "$ICEMU_ROOT/scripts/setup-host.sh"; }

build_qemu() {
	if [ -n "${ICEMU_QEMU:-}" ]; then echo "$ICEMU_QEMU"; return; fi
	bash "$ICEMU_ROOT/hw/build-qemu.sh" --tests | tail -n1
}

build_kernel() {
	if [ -n "${ICEMU_KERNEL:-}" ]; then echo "$ICEMU_KERNEL"; return; fi
	if [ -n "${USER_KERNEL:-}" ]; then echo "$USER_KERNEL"; return; fi
	bash "$ICEMU_ROOT/guest-tests/kernel/build-kernel.sh" --series "$SERIES" \
		${KERNEL_FLAGS[@]+"${KERNEL_FLAGS[@]}"} | tail -n1
}

build_rootfs() {
	if [ -n "${ICEMU_ROOTFS:-}" ]; then echo "$ICEMU_ROOTFS"; return; fi
	bash "$ICEMU_ROOT/guest-tests/rootfs/build-rootfs.sh" | tail -n1
}

# configure_cpp PRESET QEMU KERNEL: a user's one-off kernel (USER_KERNEL, ./icemu shell
# --kernel) is not written into the build tree's configuration. Builds CPP_TARGETS, or
# everything when it is empty.
configure_cpp() {
	local preset=$1 qemu=$2 kernel=$3
	local kflag=(-DICEMU_KERNEL="$kernel")
	[ -z "${USER_KERNEL:-}" ] || kflag=()
	log "configuring and building the C++ tree (preset $preset)"
	cmake --preset "$preset" -S "$ICEMU_ROOT" -DICEMU_QEMU="$qemu" "${kflag[@]}" >/dev/null
	cmake --build --preset "$preset" -j"$(nproc)" ${CPP_TARGETS[@]+--target "${CPP_TARGETS[@]}"}
}

# do_build: set-up, QEMU, kernel, C++ tree; sets QEMU_BIN and KERNEL_IMG.
do_build() {
	do_setup
	QEMU_BIN=$(build_qemu)
	KERNEL_IMG=$(build_kernel)
	[ -x "$QEMU_BIN" ] || die "QEMU build produced no binary"
	[ -f "$KERNEL_IMG" ] || die "kernel build produced no image"
	configure_cpp default "$QEMU_BIN" "$KERNEL_IMG"
	log "QEMU:   $QEMU_BIN"
	log "kernel: $KERNEL_IMG"
}

# usage_from_header FILE: print the script's leading comment block (its --help).
usage_from_header() {
	sed -n '2,/^[^#]/p' "$1" | sed '$d' | sed 's/^# \{0,1\}//'
}

# no_arguments NAME "$@": the argument handling of a command that takes none: --help prints
# its header, anything else is one clear error.
no_arguments() {
	local name=$1
	shift
	case "${1:-}" in
	-h | --help) usage_from_header "$ICEMU_ROOT/scripts/cmd/$name.sh"; exit 0 ;;
	"") ;;
	*) die "$name takes no arguments ('$1'; try --help)" ;;
	esac
}

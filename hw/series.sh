#!/usr/bin/env bash
# The QEMU patch series (hw/patches/*.patch against Debian's QEMU source, hw/qemu-version):
# check it and edit it (docs/building.md "Editing the QEMU patch series").
#
#   series.sh checkpatch     QEMU's scripts/checkpatch.pl over every patch; fails on any
#                            error or warning that is not in ALLOWED below
#   series.sh bisect         build every prefix of the series (patches 1..k for each k):
#                            qemu-system-x86_64 and tests/qtest/qos-test
#   series.sh tree DIR       a git repository in DIR: the Debian source as commit "base" plus
#                            one commit per patch, to edit with git (rebase -i, commit --fixup)
#   series.sh export DIR     regenerate hw/patches from DIR's commits since "base"
#                            (git format-patch, numbered [PATCH nn/NN], zero commit ids)
#
# Both checks cache their verdicts under $ICEMU_CACHE/qemu-series/<version>/: checkpatch one
# stamp per patch content, bisect one stamp per prefix (a hash of the build recipe, the QEMU
# version and the prefix's patches, each without its [PATCH nn/NN] number). A warm run only hashes the patches. The bisect tree and
# its build directory are reused: moving to another prefix re-applies only what differs, ninja
# rebuilds what changed, ccache ($CCACHE_DIR) serves the rest.
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
. "$(dirname "$0")/qemu-source.sh"

# Bump when a change to this script or to QEMU_CONFIGURE_FLAGS changes what a bisect build does.
RECIPE=1

# checkpatch findings that are accepted, each justified in docs/building.md:
#   PATCH-GLOB<TAB>REGEX matched against the finding's first line
ALLOWED=(
	# DEFINE_*_PROPERTIES lists: QEMU's own (DEFINE_EDID_PROPERTIES, DEFINE_BLOCK_PROPERTIES)
	# trip the same rule; a property list cannot be parenthesized.
	$'*-hw-block-add-an-inline-crypto-engine.patch\tERROR: Macros with complex values should be enclosed in parenthesis'
	# A new file that patch 05's MAINTAINERS glob (hw/block/inline-crypto*) already covers.
	$'*-hw-block-add-a-hardware-key-manager-to-the-inline-cr.patch\tWARNING: added, moved or deleted file\\(s\\), does MAINTAINERS need updating'
)

usage() {
	sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
}

VER=
UPVER=
TOP=
setup() {
	VER=$(resolve_version)
	UPVER=${VER#*:}
	UPVER=${UPVER%%+*}
	TOP="$ICEMU_CACHE/qemu-series/$UPVER"
	mkdir -p "$TOP"
}

# The pristine source, unpacked once per QEMU version (checkpatch.pl comes from it).
pristine() {
	if [ ! -f "$TOP/.pristine" ]; then
		rm -rf "$TOP/pristine"
		unpack_source "$VER" "$TOP/pristine"
		touch "$TOP/.pristine"
	fi
	echo "$TOP/pristine"
}

allowed() {
	local patch=$1 line=$2 a glob re
	for a in "${ALLOWED[@]}"; do
		glob=${a%%$'\t'*}
		re=${a#*$'\t'}
		# shellcheck disable=SC2053
		if [[ $patch == $glob ]] && [[ $line =~ $re ]]; then
			return 0
		fi
	done
	return 1
}

cmd_checkpatch() {
	local src cp key stamp p name out line bad=0 checked=0 cached=0
	setup
	src=$(pristine)
	cp="$src/scripts/checkpatch.pl"
	mkdir -p "$TOP/checkpatch"
	# a stamp per (patch, checkpatch.pl, ALLOWED): their hashes, from one sha256sum run
	local sums=() fixed
	mapfile -t sums < <(sha256sum "$cp" "${PATCHES[@]}" | cut -c1-16)
	fixed=$(printf '%s\n' "${ALLOWED[@]}" | sha256sum | cut -c1-8)-${sums[0]:0:8}
	local i=0
	for p in "${PATCHES[@]}"; do
		i=$((i + 1))
		name=$(basename "$p")
		key=${sums[i]}-$fixed
		stamp="$TOP/checkpatch/$key"
		if [ -f "$stamp" ]; then
			cached=$((cached + 1))
			continue
		fi
		checked=$((checked + 1))
		out=$(cd "$src" && perl scripts/checkpatch.pl --color=never -q --patch "$p" 2>&1 || true)
		local findings=0 accepted=0
		while IFS= read -r line; do
			case "$line" in
			ERROR:* | WARNING:*)
				if allowed "$name" "$line"; then
					accepted=$((accepted + 1))
				else
					findings=$((findings + 1))
				fi
				;;
			esac
		done <<<"$out"
		if [ "$findings" -gt 0 ]; then
			echo "checkpatch: $name: $findings finding(s):"
			printf '%s\n' "$out" | sed 's/^/    /'
			bad=1
		elif [ "$accepted" -gt 0 ]; then
			echo "checkpatch: $name: clean but for $accepted accepted finding(s) (docs/building.md)"
			touch "$stamp"
		else
			echo "checkpatch: $name: clean"
			touch "$stamp"
		fi
	done
	echo "checkpatch: ${#PATCHES[@]} patches, $checked checked, $cached cached"
	return "$bad"
}

# One hash per line: hw/qemu-version, then each patch of the series with its numbering
# ("Subject: [PATCH nn/NN]") blanked.
series_hashes() {
	local p
	sha256sum <"$HW/qemu-version" | cut -c1-64
	for p in "${PATCHES[@]}"; do
		sed -E 's|^Subject: \[PATCH [0-9]+/[0-9]+\]|Subject: [PATCH]|' "$p" | sha256sum | cut -c1-64
	done
}

cmd_bisect() {
	local src build applied want i k key stamp p
	setup
	src="$TOP/bisect/src"
	build="$TOP/bisect/build"
	mkdir -p "$TOP/bisect/stamps"
	export CCACHE_BASEDIR="$TOP/bisect" CCACHE_NOHASHDIR=true
	local keys=() n=${#PATCHES[@]}
	[ "$n" -gt 0 ] || die "no patches in $HW/patches"
	# key of prefix k: a hash of the recipe, hw/qemu-version and patches 1..k (one hash per
	# file, then one per prefix over the file hashes). A patch is hashed without its number
	# ("[PATCH 05/18]" in the subject, "0005-" in the name), so appending a patch to the
	# series keeps the keys, and the stamps, of the prefixes before it.
	local sums=() acc
	mapfile -t sums < <(series_hashes)
	local kdir
	kdir=$(mktemp -d)
	acc="recipe $RECIPE"$'\n'"${sums[0]}"
	for ((k = 1; k <= n; k++)); do
		acc+=$'\n'"${sums[k]}"
		printf '%s\n' "$acc" >"$kdir/$k"
	done
	mapfile -t keys < <(cd "$kdir" && sha256sum $(seq 1 "$n") | cut -c1-16)
	rm -rf "$kdir"
	for ((k = 1; k <= n; k++)); do
		key=${keys[k - 1]}
		stamp="$TOP/bisect/stamps/$key"
		p=$(basename "${PATCHES[k - 1]}")
		if [ -f "$stamp" ]; then
			echo "bisect: prefix $k/$n ($p): builds (cached)"
			continue
		fi
		if [ ! -f "$TOP/bisect/.unpacked" ]; then
			rm -rf "$TOP/bisect/src" "$build"
			unpack_source "$VER" "$src"
			touch "$TOP/bisect/.unpacked"
		fi
		# $TOP/bisect/applied lists the keys of the prefixes the tree's HEAD went through;
		# keep the longest one that is a prefix of this run's series, re-apply the rest.
		applied=0
		if [ -f "$TOP/bisect/applied" ]; then
			mapfile -t want <"$TOP/bisect/applied"
			for ((i = 0; i < ${#want[@]} && i < k; i++)); do
				[ "${want[i]}" = "${keys[i]}" ] || break
			done
			applied=$i
		fi
		# one reset, so that files the two states share keep their mtime (ninja skips them)
		local target=base
		if [ "$applied" -gt 0 ] && git -C "$src" rev-parse -q --verify "prefix-$applied" >/dev/null; then
			target="prefix-$applied"
		else
			applied=0
		fi
		git -C "$src" reset -q --hard "$target"
		git -C "$src" clean -fdq
		printf '%s\n' "${keys[@]:0:applied}" >"$TOP/bisect/applied"
		for ((i = applied + 1; i <= k; i++)); do
			apply_patches "$src" "${PATCHES[i - 1]}"
			git -C "$src" tag -f "prefix-$i" >/dev/null
			echo "${keys[i - 1]}" >>"$TOP/bisect/applied"
		done
		if [ ! -f "$build/build.ninja" ]; then
			mkdir -p "$build"
			run_logged "$TOP/bisect/configure.log" "configuring the bisect tree" \
				env -C "$build" CC="ccache gcc" "$src/configure" "${QEMU_CONFIGURE_FLAGS[@]}"
		fi
		local t0=$SECONDS
		if ! run_logged "$TOP/bisect/build-$k.log" "building prefix $k/$n ($p)" \
			ninja -C "$build" qemu-system-x86_64 tests/qtest/qos-test; then
			echo "bisect: prefix $k/$n ($p): does NOT build (log: $TOP/bisect/build-$k.log)"
			return 1
		fi
		echo "bisect: prefix $k/$n ($p): builds ($((SECONDS - t0)) s)"
		touch "$stamp"
	done
	echo "bisect: all $n prefixes build"
}

cmd_tree() {
	local dir=${1:?series.sh tree DIR}
	[ ! -e "$dir" ] || die "$dir exists"
	setup
	unpack_source "$VER" "$dir"
	apply_patches "$dir" "${PATCHES[@]}"
	echo "$dir: base + ${#PATCHES[@]} commits; edit, then: $0 export $dir"
}

cmd_export() {
	local dir=${1:?series.sh export DIR}
	git -C "$dir" rev-parse -q --verify base >/dev/null || die "$dir has no tag 'base'"
	rm -f "$HW"/patches/*.patch
	git -C "$dir" format-patch -q --zero-commit --no-signature --numbered \
		-o "$HW/patches" base
	ls "$HW/patches"
}

case "${1:-}" in
checkpatch) shift; cmd_checkpatch "$@" ;;
bisect) shift; cmd_bisect "$@" ;;
tree) shift; cmd_tree "$@" ;;
export) shift; cmd_export "$@" ;;
*) usage ;;
esac

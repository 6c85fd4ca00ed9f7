# Shared helpers for icemu's shell scripts (sourced, not executed).
# shellcheck shell=bash

ICEMU_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${ICEMU_CACHE:=${XDG_CACHE_HOME:-$HOME/.cache}/icemu}"
export ICEMU_ROOT ICEMU_CACHE
export CCACHE_DIR="${CCACHE_DIR:-$ICEMU_CACHE/ccache}"

_icemu_t0=${_icemu_t0:-$(date +%s)}
export _icemu_t0

log() {
	local now
	now=$(date +%s)
	printf '[icemu %4ds] %s\n' "$((now - _icemu_t0))" "$*" >&2
}

die() {
	printf 'icemu: error: %s\n' "$*" >&2
	exit 1
}

# tree_content_key DIR [FIND-EXCLUSIONS...]: a short hash of a source tree's content, so an
# edited tree gets a new cache key (a path-keyed cache would hand back a stale build). A git
# tree (DIR its top level) hashes HEAD, the diff against it and the untracked files; any other
# tree the path, size and mtime of every file, less .git and what the find(1) expressions in
# FIND-EXCLUSIONS exclude (the tree's own build products).
tree_content_key() {
	local dir=$1
	shift
	if git -C "$dir" rev-parse --is-inside-work-tree >/dev/null 2>&1 &&
		[ "$(git -C "$dir" rev-parse --show-toplevel)" = "$(cd "$dir" && pwd -P)" ]; then
		{
			git -C "$dir" rev-parse HEAD
			git -C "$dir" diff HEAD --binary
			git -C "$dir" ls-files --others --exclude-standard -z |
				(cd "$dir" && xargs -0r sha256sum)
		} | sha256sum | cut -c1-16
	else
		(cd "$dir" && find . -type f ! -path './.git/*' "$@" -printf '%P %s %T@\n' |
			LC_ALL=C sort | sha256sum | cut -c1-16)
	fi
}

# hash_files FILE... : a short stable hash of the named files' contents and names.
hash_files() {
	local f
	for f in "$@"; do
		printf '%s\n' "${f#"$ICEMU_ROOT"/}"
		cat "$f"
	done | sha256sum | cut -c1-16
}

# cache_key RECIPE FILE... : the cache key of a build whose inputs are FILE... and whose
# build steps are version RECIPE of the calling script. Scripts bump their RECIPE when a
# change alters what they produce; edits that do not (messages, download handling) keep
# the key, so they do not cost a kernel or QEMU rebuild.
cache_key() {
	local recipe=$1
	shift
	{
		printf 'recipe %s\n' "$recipe"
		hash_files "$@"
	} | sha256sum | cut -c1-16
}

# run_logged LOGFILE DESCRIPTION CMD... : run a long command with its output in LOGFILE,
# printing a heartbeat (elapsed time and the last line) every 30 s; on failure, show the tail.
run_logged() {
	local logf=$1 what=$2
	shift 2
	local start pid rc
	start=$(date +%s)
	log "$what (log: $logf)"
	"$@" >"$logf" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		local i
		for i in $(seq 1 30); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 1
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "  ... $what: $(($(date +%s) - start))s, $(tail -n1 "$logf" | cut -c1-100)"
		fi
	done
	rc=0
	wait "$pid" || rc=$?
	if [ "$rc" != 0 ]; then
		tail -n 40 "$logf" >&2
		die "$what failed (exit $rc); full log: $logf"
	fi
	log "$what done in $(($(date +%s) - start))s"
}

mirror_uri() {
	# The first non-security Debian URI of the machine's own apt configuration.
	local uri=""
	if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
		uri=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources |
			awk '{for (i = 2; i <= NF; i++) print $i}' |
			grep -v -e security -e nodesource -e google | head -n1 || true)
	fi
	if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
		uri=$(awk '$1 == "deb" && $0 !~ /security/ {
			for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
			/etc/apt/sources.list)
	fi
	[ -n "$uri" ] || die "cannot find the Debian mirror URI in /etc/apt (sources.list or *.sources)"
	echo "$uri"
}

#!/usr/bin/env bash
# The QEMU device's copy of the event log schema must equal the canonical file byte for byte
# (docs/event-log.md "The schema, defined once"). The copy lives in hw/qemu-overlay/ today; once
# the device's files are added by the patch series instead, it is the file a patch in hw/patches/
# adds, and this script reads it from there.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CANON="$ROOT/common/icemu/event-log.def"
REL=include/hw/block/inline-crypto-events.def
COPY="$ROOT/hw/qemu-overlay/$REL"

if [ ! -f "$COPY" ]; then
	PATCH=$(grep -l -x -F -- "+++ b/$REL" "$ROOT"/hw/patches/*.patch 2>/dev/null | tail -n 1 || true)
	if [ -z "$PATCH" ]; then
		echo "no copy of the schema: neither hw/qemu-overlay/$REL nor a patch adding $REL" >&2
		exit 1
	fi
	# A patch that adds a file: every line of its hunk is '+' + the file's line.
	TMP=$(mktemp)
	trap 'rm -f "$TMP"' EXIT
	awk -v want="+++ b/$REL" '
		$0 == want { on = 1; next }
		on && /^@@/ { next }
		on && /^\+/ { print substr($0, 2); next }
		on { exit }
	' "$PATCH" >"$TMP"
	COPY="$TMP"
	echo "checking the copy added by $(basename "$PATCH")"
fi

if ! cmp -s "$CANON" "$COPY"; then
	echo "the device's schema copy differs from common/icemu/event-log.def:" >&2
	diff -u "$CANON" "$COPY" >&2 || true
	echo "copy the canonical file over it (it is data for both sides, edited in one place)" >&2
	exit 1
fi
echo "schema copy identical: $REL"

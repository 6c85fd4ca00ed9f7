#!/usr/bin/env bash
# The QEMU device's copy of the event log schema must equal the canonical file byte for byte
# (docs/event-log.md "The schema, defined once"). The copy is the file the engine patch in
# hw/patches/ adds; this script reads it from there.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CANON="$ROOT/common/icemu/event-log.def"
REL=include/hw/block/inline-crypto-events.def
PATCH=$(grep -l -x -F -- "+++ b/$REL" "$ROOT"/hw/patches/*.patch 2>/dev/null | tail -n 1 || true)
if [ -z "$PATCH" ]; then
	echo "no copy of the schema: no patch in hw/patches adds $REL" >&2
	exit 1
fi
# A patch that adds a file: every line of its hunk is '+' + the file's line.
COPY=$(mktemp)
trap 'rm -f "$COPY"' EXIT
awk -v want="+++ b/$REL" '
	$0 == want { on = 1; next }
	on && /^@@/ { next }
	on && /^\+/ { print substr($0, 2); next }
	on { exit }
' "$PATCH" >"$COPY"
echo "checking the copy added by $(basename "$PATCH")"

if ! cmp -s "$CANON" "$COPY"; then
	echo "the device's schema copy differs from common/icemu/event-log.def:" >&2
	diff -u "$CANON" "$COPY" >&2 || true
	echo "copy the canonical file over it (it is data for both sides, edited in one place)" >&2
	exit 1
fi
echo "schema copy identical: $REL"

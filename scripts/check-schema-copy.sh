#!/usr/bin/env bash
# The QEMU device's copy of the event log schema must equal the canonical file byte for byte
# (docs/event-log.md "The schema, defined once"). The copy is the file the engine patch in
# hw/patches/ adds and later patches change; this script rebuilds it from their hunks.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CANON="$ROOT/common/icemu/event-log.def"
REL=include/hw/block/inline-crypto-events.def
# The patches that add or change it, in series order (the file names are numbered).
mapfile -t PATCHES < <(grep -l -E -- "^\+\+\+ b/$REL\$" "$ROOT"/hw/patches/*.patch 2>/dev/null || true)
if [ "${#PATCHES[@]}" = 0 ]; then
	echo "no copy of the schema: no patch in hw/patches adds $REL" >&2
	exit 1
fi
# Apply only that file's hunks, patch after patch, in an empty directory.
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for p in "${PATCHES[@]}"; do
	if ! git -C "$WORK" apply --include="$REL" "$p" 2>"$WORK/err"; then
		echo "$(basename "$p"): its change to $REL does not apply:" >&2
		cat "$WORK/err" >&2
		exit 1
	fi
done
COPY="$WORK/$REL"
[ -f "$COPY" ] || { echo "the patches delete $REL" >&2; exit 1; }
echo "checking the copy made by ${#PATCHES[@]} patch(es): $(basename "${PATCHES[-1]}") last"

if ! cmp -s "$CANON" "$COPY"; then
	echo "the device's schema copy differs from common/icemu/event-log.def:" >&2
	diff -u "$CANON" "$COPY" >&2 || true
	echo "copy the canonical file over it (it is data for both sides, edited in one place)" >&2
	exit 1
fi
echo "schema copy identical: $REL"

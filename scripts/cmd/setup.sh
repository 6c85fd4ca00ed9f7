#!/usr/bin/env bash
# ./icemu setup: install the host packages icemu needs (Debian bookworm, as root or with
# sudo). Idempotent.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$ICEMU_ROOT/scripts/build-lib.sh"
case "${1:-}" in
-h | --help) usage_from_header "$0"; exit 0 ;;
"") ;;
*) die "setup takes no arguments ('$1'; try --help)" ;;
esac
do_setup

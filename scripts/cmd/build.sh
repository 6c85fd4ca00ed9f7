#!/usr/bin/env bash
# ./icemu build: set up the host and build QEMU, the guest kernel and the C++ tree
# (build/default). Warm runs only rebuild what changed.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$ICEMU_ROOT/scripts/build-lib.sh"
case "${1:-}" in
-h | --help) usage_from_header "$0"; exit 0 ;;
"") ;;
*) die "build takes no arguments ('$1'; try --help)" ;;
esac
do_build

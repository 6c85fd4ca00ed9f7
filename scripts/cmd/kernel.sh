#!/usr/bin/env bash
# ./icemu kernel [--series 7|6.12|6.1] [--source DIR] [--no-patches] [--exclude-patch NAME]
#                [--with-fixes] [--print-path]
# Build a guest kernel (Debian's linux-source, or your tree with --source) with icemu's config
# fragments and patches and print its bzImage path. See guest-tests/kernel/build-kernel.sh.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$ICEMU_ROOT/scripts/build-lib.sh"
case "${1:-}" in
-h | --help) usage_from_header "$0"; exit 0 ;;
esac
do_setup
exec bash "$ICEMU_ROOT/guest-tests/kernel/build-kernel.sh" "$@"

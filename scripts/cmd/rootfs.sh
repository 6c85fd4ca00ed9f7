#!/usr/bin/env bash
# ./icemu rootfs [--print-path]: build (or find) the Debian root filesystem image of
# ./icemu shell and print its path. Its packages are in guest-tests/rootfs/rootfs.conf.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$ICEMU_ROOT/scripts/build-lib.sh"
case "${1:-}" in
-h | --help) usage_from_header "$0"; exit 0 ;;
--print-path) exec bash "$ICEMU_ROOT/guest-tests/rootfs/build-rootfs.sh" --print-path ;;
"") ;;
*) die "rootfs: unknown option '$1' (try --help)" ;;
esac
do_setup
exec bash "$ICEMU_ROOT/guest-tests/rootfs/build-rootfs.sh"

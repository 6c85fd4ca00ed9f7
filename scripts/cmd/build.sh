#!/usr/bin/env bash
# ./icemu build: set up the host and build QEMU, the guest kernel and the C++ tree
# (build/default). Warm runs only rebuild what changed.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$ICEMU_ROOT/scripts/build-lib.sh"
no_arguments build "$@"
do_build

#!/usr/bin/env bash
# ./icemu setup: install the host packages icemu needs (Debian bookworm, as root or with
# sudo). Idempotent.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$ICEMU_ROOT/scripts/build-lib.sh"
no_arguments setup "$@"
do_setup

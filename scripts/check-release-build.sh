#!/usr/bin/env bash
# A plain CMake build of another build type compiles, with warnings as errors (what a packager
# or a new contributor runs, plus -Werror so that a warning only the optimiser finds, like GCC
# 12's -Wrestrict false positive at -O3, fails here and not on their machine).
#
#   check-release-build.sh BUILD_DIR [BUILD_TYPE [TARGET]]
#
# Configures this source tree into BUILD_DIR (kept between runs, so a re-run is incremental)
# and builds TARGET (default icemu_models, the reference models: cheap, and the code the
# optimiser warned about).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:?usage: check-release-build.sh BUILD_DIR [BUILD_TYPE [TARGET]]}
TYPE=${2:-Release}
TARGET=${3:-icemu_models}
LAUNCHER=()
if command -v ccache >/dev/null; then
	LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake -S "$ROOT" -B "$DIR" -DCMAKE_BUILD_TYPE="$TYPE" -DICEMU_WERROR=ON -DBUILD_TESTING=OFF \
	"${LAUNCHER[@]}" >"$DIR.configure.log" 2>&1 || { cat "$DIR.configure.log"; exit 1; }
cmake --build "$DIR" --target "$TARGET" -j2
echo "$TYPE build of $TARGET: ok"

#!/usr/bin/env bash
# Fails if any of our C++ sources differs from what clang-format (.clang-format at the top)
# makes of it. The QEMU patch series (hw/patches) follows QEMU's style and checkpatch instead.
# Fix: clang-format -i FILE...
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "clang-format not installed (scripts/setup-host.sh installs it)" >&2; exit 1; }
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.cpp' '*.hpp' '*.h')
else
	mapfile -t files < <(find bench common guest-tests hw/tests models -name '*.cpp' -o -name '*.hpp' -o -name '*.h')
fi
bad=()
for f in "${files[@]}"; do
	[ -f "$f" ] || continue
	clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
	echo "not clang-formatted (run: clang-format -i ${bad[*]}):" >&2
	printf '  %s\n' "${bad[@]}" >&2
	exit 1
fi
echo "${#files[@]} files clang-formatted"

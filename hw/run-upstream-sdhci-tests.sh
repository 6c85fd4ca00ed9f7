#!/usr/bin/env bash
# Run QEMU's own SDHCI qtests (tests/qtest/sdhci-test.c inside qos-test) against icemu's QEMU
# on its sdhci-pci node: with the CQHCI properties off (their default) sdhci-pci must be
# upstream's, register for register.
#   run-upstream-sdhci-tests.sh BUILD_DIR
# Exit 0 only if every sdhci-pci test passed and at least ICEMU_UPSTREAM_SDHCI_MIN_TESTS
# (default 1: "registers" in QEMU 10.0.13) ran.
set -euo pipefail
build=${1:?build dir}
min=${ICEMU_UPSTREAM_SDHCI_MIN_TESTS:-1}
qos="$build/tests/qtest/qos-test"
bin="$build/qemu-system-x86_64"
[ -x "$qos" ] || { echo "missing $qos (build with hw/build-qemu.sh --tests)" >&2; exit 1; }
[ -x "$bin" ] || { echo "missing $bin" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export QTEST_QEMU_BINARY="$bin"
rc=0
(cd "$tmp" && "$qos" --tap -k -r /x86_64/pc/i440FX-pcihost/pci-bus-pc/pci-bus/sdhci-pci) >"$tmp/tap" 2>"$tmp/err" || rc=$?
cat "$tmp/tap"
ok=$(grep -c '^ok ' "$tmp/tap" || true)
notok=$(grep -c '^not ok ' "$tmp/tap" || true)
echo "# upstream SDHCI qtests: $ok passed, $notok failed"
if [ "$rc" != 0 ] || [ "$notok" != 0 ] || [ "$ok" -lt "$min" ]; then
	sed 's/^/# stderr: /' "$tmp/err" | tail -n 30
	echo "FAIL: qos-test exit $rc, $ok ok (need >= $min), $notok not ok" >&2
	exit 1
fi

#!/usr/bin/env bash
# Run QEMU's own qtests for one device (inside qos-test) against icemu's QEMU.
#   run-upstream-tests.sh BUILD_DIR off|on            UFS (tests/qtest/ufs-test.c)
#   run-upstream-tests.sh BUILD_DIR --sdhci            sdhci-pci (tests/qtest/sdhci-test.c)
# UFS "on" runs the same tests with every UFS controller created with crypto=on (through a
# wrapper that appends -global ufs.crypto=on), proving the engine leaves the rest of the
# controller as upstream has it. --sdhci runs them on sdhci-pci with the CQHCI properties off
# (their default): sdhci-pci must be upstream's, register for register.
# Exit 0 only if every test passed and at least the minimum ran:
#   UFS: ICEMU_UPSTREAM_MIN_TESTS (default 12: the 10 of QEMU 10.0.13 plus the two no-PRDT
#        tests our patch series adds)
#   sdhci-pci: ICEMU_UPSTREAM_SDHCI_MIN_TESTS (default 1: "registers" in QEMU 10.0.13)
set -euo pipefail
build=${1:?build dir}
mode=${2:-off}
if [ "$mode" = --sdhci ]; then
	node=sdhci-pci what="SDHCI qtests" min=${ICEMU_UPSTREAM_SDHCI_MIN_TESTS:-1}
else
	node=ufs what="UFS qtests (crypto=$mode)" min=${ICEMU_UPSTREAM_MIN_TESTS:-12}
fi
qos="$build/tests/qtest/qos-test"
bin="$build/qemu-system-x86_64"
[ -x "$qos" ] || { echo "missing $qos (build with hw/build-qemu.sh --tests)" >&2; exit 1; }
[ -x "$bin" ] || { echo "missing $bin" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ "$mode" = on ]; then
	if ! "$bin" -device ufs,help 2>/dev/null | grep -q '^ *crypto='; then
		echo "FAIL: $bin has no ufs.crypto property (icemu's crypto engine is not built in)" >&2
		exit 1
	fi
	printf '#!/bin/sh\nexec "%s" "$@" -global ufs.crypto=on\n' "$bin" >"$tmp/qemu-system-x86_64"
	chmod +x "$tmp/qemu-system-x86_64"
	bin="$tmp/qemu-system-x86_64"  # libqtest takes the arch from the name
fi

export QTEST_QEMU_BINARY="$bin"
rc=0
(cd "$tmp" && "$qos" --tap -k -r "/x86_64/pc/i440FX-pcihost/pci-bus-pc/pci-bus/$node") >"$tmp/tap" 2>"$tmp/err" || rc=$?
cat "$tmp/tap"
ok=$(grep -c '^ok ' "$tmp/tap" || true)
notok=$(grep -c '^not ok ' "$tmp/tap" || true)
echo "# upstream $what: $ok passed, $notok failed"
if [ "$rc" != 0 ] || [ "$notok" != 0 ] || [ "$ok" -lt "$min" ]; then
	sed 's/^/# stderr: /' "$tmp/err" | tail -n 30
	echo "FAIL: qos-test exit $rc, $ok ok (need >= $min), $notok not ok" >&2
	exit 1
fi

#!/usr/bin/env bash
# ./icemu fuzz [--target T|all] [--runs N | --time S] [--corpus DIR] [--artifacts DIR]
#              [--rss-limit-mb N] [--timeout S] [--leak-check-every-input]
#              [--list | --build-only] [-- LIBFUZZER-ARGS...]
# ./icemu fuzz --target T --replay FILE
# ./icemu fuzz --smoke
# Fuzz icemu's devices with QEMU's own generic-fuzz target (libFuzzer) in a QEMU built with
# clang, ASan and UBSan (hw/build-qemu-fuzz.sh, cached). The fuzzer drives the device's MMIO,
# PCI config space and DMA (every read of guest memory returns fuzzer data) with a machine
# reset after every input. Targets (see --list for their QEMU arguments):
#   ufs-crypto       ufs,crypto=on with a ufs-lu, legacy doorbell
#   ufs-crypto-mcq   the same with mcq=on
#   ufs-wrapped      ufs,crypto=on,crypto-wrapped-keys=on (the key manager)
#   emmc-cqhci       sdhci-pci,cqhci=on,crypto=on with an eMMC
#   all              each of them in turn (the default)
# Options:
#   --runs N         stop each target after N executions
#   --time S         stop each target after S seconds (default 60)
#   --corpus DIR     working corpus, DIR/<target>/ (default $ICEMU_CACHE/fuzz/corpus); the
#                    seeds hw/fuzz/make-seeds.py writes are read too, never written
#   --artifacts DIR  where a crashing, leaking, out-of-memory or hanging input and the
#                    fuzzer's log are kept, DIR/<target>/ (default ./fuzz-artifacts)
#   --rss-limit-mb N libFuzzer's memory limit (default 2048): above it is a failure
#   --timeout S      one input running longer than S seconds is a failure (default 300)
#   --leak-check-every-input
#                    LeakSanitizer after every input whose mallocs outnumber its frees
#                    (libFuzzer's default; about 10x slower with QEMU, whose RCU frees late).
#                    By default the fuzzing runs without, and then every corpus input (each
#                    input that found new coverage, and the seeds) is run once more with it
#   --list           print each target's QEMU_FUZZ_ARGS and QEMU_FUZZ_OBJECTS and exit
#   --build-only     build the fuzzing QEMU (if needed), print its path and exit
#   --replay FILE    run one input of target T (QTEST_LOG=1: its qtest commands are printed,
#                    the makings of a reproducer) and exit with the fuzzer's status
#   --smoke          what CI runs: the ctest label "fuzz" (build, a minute per target, and
#                    the check that a failing fuzzer run fails the smoke)
#   -- ARGS          further libFuzzer options (e.g. -seed=1)
# Prints executions, exec/s, corpus size and the result per target; exits 1 if any target
# crashed, leaked, hit a sanitizer report, a timeout or the memory limit (the input is kept).
# Environment: ICEMU_QEMU_FUZZ names a qemu-fuzz-x86_64 to use instead of building one.
# See docs/fuzzing.md.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$ICEMU_ROOT/scripts/build-lib.sh"

TARGETS=(ufs-crypto ufs-crypto-mcq ufs-wrapped emmc-cqhci)

# target_args T: the QEMU arguments of target T (QEMU_FUZZ_ARGS). Backing stores are null-co
# (reads return zeros, writes are dropped) so that inputs stay independent of each other.
target_args() {
	local lu="-drive if=none,id=lu0,file=null-co://,format=raw,file.read-zeroes=on"
	local ufs="-device ufs,id=ufs0,serial=fuzz,crypto=on,crypto-keyslots=4"
	case "$1" in
	ufs-crypto) echo "-machine q35 -nodefaults $lu $ufs -device ufs-lu,bus=ufs0,lun=0,drive=lu0" ;;
	ufs-crypto-mcq) echo "-machine q35 -nodefaults $lu $ufs,mcq=on -device ufs-lu,bus=ufs0,lun=0,drive=lu0" ;;
	ufs-wrapped)
		# a fixed long-term wrapping key (32 bytes), so that an input means the same in every run
		echo "-machine q35 -nodefaults -object secret,id=lt0,format=base64,data=aWNlbXUtZnV6ei1sb25nLXRlcm0td3JhcHBpbmdrZXk= $lu $ufs,crypto-wrapped-keys=on,crypto-wrapping-key=lt0 -device ufs-lu,bus=ufs0,lun=0,drive=lu0"
		;;
	emmc-cqhci)
		echo "-machine q35 -nodefaults -drive if=none,id=emmc0,file=null-co://,format=raw,file.read-zeroes=on,file.size=64M -device sdhci-pci,id=sd0,cqhci=on,emmc-drive=emmc0,crypto=on,crypto-keyslots=4"
		;;
	*) return 1 ;;
	esac
}

# target_objects T: the QOM types / memory regions the fuzzer may access (QEMU_FUZZ_OBJECTS).
target_objects() {
	case "$1" in
	ufs-*) echo "ufs*" ;;
	emmc-cqhci) echo "sdhci*" ;;
	*) return 1 ;;
	esac
}

target=all
runs=""
time_s=""
corpus="$ICEMU_CACHE/fuzz/corpus"
artifacts="$PWD/fuzz-artifacts"
rss_mb=2048
timeout_s=300
list=0
build_only=0
leaks_every=0
replay=""
EXTRA=()
need_value() { [ "$2" -ge 2 ] || die "$1 needs a value (try ./icemu fuzz --help)"; }
is_count() { [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer, not '$2'"; }
while [ $# -gt 0 ]; do
	case "$1" in
	-h | --help) usage_from_header "$0"; exit 0 ;;
	--target) need_value "$1" $#; target=$2; shift 2 ;;
	--runs) need_value "$1" $#; is_count "$1" "$2"; runs=$2; shift 2 ;;
	--time) need_value "$1" $#; is_count "$1" "$2"; time_s=$2; shift 2 ;;
	--corpus) need_value "$1" $#; corpus=$2; shift 2 ;;
	--artifacts) need_value "$1" $#; artifacts=$2; shift 2 ;;
	--rss-limit-mb) need_value "$1" $#; is_count "$1" "$2"; rss_mb=$2; shift 2 ;;
	--timeout) need_value "$1" $#; is_count "$1" "$2"; timeout_s=$2; shift 2 ;;
	--list) list=1; shift ;;
	--build-only) build_only=1; shift ;;
	--smoke)
		[ $# -eq 1 ] || die "--smoke takes no other options"
		do_setup
		log "running ctest -L fuzz"
		cmake --preset default -S "$ICEMU_ROOT" >/dev/null
		exec ctest --preset default -L fuzz
		;;
	--leak-check-every-input) leaks_every=1; shift ;;
	--replay) need_value "$1" $#; replay=$2; shift 2 ;;
	--) shift; EXTRA=("$@"); break ;;
	*) die "unknown fuzz option '$1' (try ./icemu fuzz --help)" ;;
	esac
done
[ -z "$runs" ] || [ -z "$time_s" ] || die "--runs and --time exclude each other"
[ -n "$runs" ] || [ -n "$time_s" ] || time_s=60
if [ "$target" = all ]; then
	SELECTED=("${TARGETS[@]}")
elif target_args "$target" >/dev/null; then
	SELECTED=("$target")
else
	die "unknown fuzz target '$target' (one of: ${TARGETS[*]} all)"
fi

if [ -n "$replay" ]; then
	[ "$target" != all ] || die "--replay needs --target (the input's target)"
	[ -f "$replay" ] || die "--replay: no such file '$replay'"
fi

if [ "$list" = 1 ]; then
	for t in "${SELECTED[@]}"; do
		printf "%s\n  QEMU_FUZZ_OBJECTS='%s'\n  QEMU_FUZZ_ARGS='%s'\n" "$t" "$(target_objects "$t")" "$(target_args "$t")"
	done
	exit 0
fi

do_setup
bash "$ICEMU_ROOT/scripts/setup-host.sh" --fuzz
if [ -n "${ICEMU_QEMU_FUZZ:-}" ]; then
	FUZZ_BIN=$ICEMU_QEMU_FUZZ
else
	FUZZ_BIN=$(bash "$ICEMU_ROOT/hw/build-qemu-fuzz.sh" | tail -n1) ||
		die "the fuzzing QEMU build failed (see the log named above)"
fi
[ -x "$FUZZ_BIN" ] || die "no fuzzing QEMU at '$FUZZ_BIN'"
if [ "$build_only" = 1 ]; then
	echo "$FUZZ_BIN"
	exit 0
fi

# UBSan is recoverable in QEMU's build: make its first report fatal, so libFuzzer keeps the
# input. Symbolized stacks need llvm-symbolizer (llvm-14).
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
[ -x /usr/bin/llvm-symbolizer-14 ] && export ASAN_SYMBOLIZER_PATH=/usr/bin/llvm-symbolizer-14
export QEMU_AVOID_DOUBLE_FETCH=1

if [ -n "$replay" ]; then
	QTEST_LOG=1 FUZZ_SERIALIZE_QTEST=1 QEMU_FUZZ_ARGS=$(target_args "$target") QEMU_FUZZ_OBJECTS=$(target_objects "$target") \
		exec "$FUZZ_BIN" --fuzz-target=generic-fuzz ${EXTRA[@]+"${EXTRA[@]}"} "$replay"
fi

# stat NAME LOG: a libFuzzer final statistic (-print_final_stats=1).
stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -n1; }

# run_fuzzer TARGET LOG LIBFUZZER-ARGS...: run qemu-fuzz-x86_64 on TARGET in the background
# with its output in LOG, a progress line every minute; returns libFuzzer's exit status.
run_fuzzer() {
	local t=$1 logf=$2 pid rc=0
	shift 2
	QEMU_FUZZ_ARGS=$(target_args "$t") QEMU_FUZZ_OBJECTS=$(target_objects "$t") \
		"$FUZZ_BIN" --fuzz-target=generic-fuzz -print_final_stats=1 \
		-rss_limit_mb="$rss_mb" -timeout="$timeout_s" "$@" >"$logf" 2>&1 &
	pid=$!
	fuzzer_pid=$pid
	while kill -0 "$pid" 2>/dev/null; do
		for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null && sleep 1; done
		if kill -0 "$pid" 2>/dev/null; then
			log "  ... $t: $(grep -a '^#[0-9]' "$logf" | tail -n1 | cut -c1-110)"
		fi
	done
	wait "$pid" || rc=$?
	fuzzer_pid=""
	return "$rc"
}

# failures_kept DIR: how many inputs libFuzzer kept in DIR for a failure (not slow-unit-*).
failures_kept() {
	find "$1" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
		-o -name 'oom-*' \) | wc -l
}

# verdict LOG RC: empty if the run is clean, else what went wrong (the first sanitizer or
# libFuzzer error line).
verdict() {
	local report
	report=$(grep -a -m1 -oE '==[0-9]+== ?ERROR: .*|runtime error: .*|^SUMMARY: .*' "$1" | head -n1 || true)
	report=${report#==*==}
	report=${report# }
	if [ "$2" != 0 ] || [ -n "$report" ]; then
		echo "exit $2${report:+: $report}"
	fi
}

# The seeds (hw/fuzz/make-seeds.py): Linux-like bring-up and crypto I/O per target, read as a
# second corpus that libFuzzer never writes.
mkdir -p "$ICEMU_CACHE/fuzz"
seed_dir=$(mktemp -d "$ICEMU_CACHE/fuzz/seeds.XXXXXX")
fuzzer_pid=""
trap 'rm -rf "$seed_dir"' EXIT
# killed (ctest's timeout, ^C): take the fuzzer down too
trap '[ -z "$fuzzer_pid" ] || kill "$fuzzer_pid" 2>/dev/null; exit 143' TERM
trap '[ -z "$fuzzer_pid" ] || kill "$fuzzer_pid" 2>/dev/null; exit 130' INT
/usr/bin/python3 "$ICEMU_ROOT/hw/fuzz/make-seeds.py" "$seed_dir" || die "hw/fuzz/make-seeds.py failed"

failed=0
summary=$(printf '%-16s %12s %9s %7s  %s' target executions exec/s corpus result)
mkdir -p "$ICEMU_CACHE/fuzz/logs"
for t in "${SELECTED[@]}"; do
	work="$corpus/$t"
	keep="$artifacts/$t"
	# one log per run (runs of the same target may overlap); the 40 newest are kept
	logf="$ICEMU_CACHE/fuzz/logs/$t-$(date +%Y%m%d-%H%M%S)-$$.log"
	ls -t "$ICEMU_CACHE/fuzz/logs/"*.log 2>/dev/null | tail -n +40 | sed 's/\.log$//' |
		while read -r old; do rm -f "$old.log" "$old.log.leaks"; done
	mkdir -p "$work" "$keep"
	seeds=()
	[ ! -d "$seed_dir/$t" ] || seeds=("$seed_dir/$t")
	limit=(-max_total_time="$time_s")
	[ -z "$runs" ] || limit=(-runs="$runs")
	before=$(failures_kept "$keep")
	slow_before=$(find "$keep" -name 'slow-unit-*' | wc -l)
	log "fuzzing $t (${runs:+$runs runs}${time_s:+$time_s s}; log: $logf)"
	rc=0
	run_fuzzer "$t" "$logf" -detect_leaks="$leaks_every" -artifact_prefix="$keep/" \
		"${limit[@]}" ${EXTRA[@]+"${EXTRA[@]}"} "$work" ${seeds[@]+"${seeds[@]}"} || rc=$?
	execs=$(stat number_of_executed_units "$logf")
	rate=$(stat average_exec_per_sec "$logf")
	problem=$(verdict "$logf" "$rc")
	if [ -z "$problem" ] && [ "$leaks_every" = 0 ]; then
		# The leak pass: every corpus input once more, with LeakSanitizer checking each.
		log "checking $t's corpus for leaks"
		rc=0
		run_fuzzer "$t" "$logf.leaks" -detect_leaks=1 -runs=0 -artifact_prefix="$keep/" \
			"$work" ${seeds[@]+"${seeds[@]}"} || rc=$?
		problem=$(verdict "$logf.leaks" "$rc")
		[ -z "$problem" ] || { problem="leak pass: $problem"; cat "$logf.leaks" >>"$logf"; }
	fi
	units=$(find "$work" -type f | wc -l)
	slow=$(($(find "$keep" -name 'slow-unit-*' | wc -l) - slow_before))
	result=ok
	# an input slower than 10 s is kept (slow-unit-*) and named, but is no failure
	[ "$slow" = 0 ] || result="ok ($slow inputs slower than 10 s kept in $keep)"
	new_artifacts=$(($(failures_kept "$keep") - before))
	[ -n "$problem" ] || [ "$new_artifacts" = 0 ] || problem="exit 0, but libFuzzer kept an input"
	if [ -n "$problem" ]; then
		failed=1
		result="FAIL ($problem)"
		cp "$logf" "$keep/$(basename "$logf")"
		log "$t FAILED: $result"
		ls -t "$keep" | head -n 3 | sed "s|^|  kept: $keep/|" >&2
		tail -n 40 "$logf" >&2
	fi
	rmdir "$keep" 2>/dev/null || true
	summary+=$'\n'$(printf '%-16s %12s %9s %7s  %s' "$t" "${execs:-?}" "${rate:-?}" "$units" "$result")
done
echo "$summary"
rmdir "$artifacts" 2>/dev/null || true
exit "$failed"

#!/usr/bin/env bash
# fstests.report-recorded: icemu-fstests-report end to end on a recorded run (tests/data)
# with the real icemu-check: the table, the JUnit file and the exit status. In the recorded
# run generic/580 passed natively, generic/548 did not run and generic/576 failed; the same
# run with the evictions cut out of the device log must fail generic/580 with the
# keys-evicted verdict although fstests passed it.
#   test-report.sh REPORT_TOOL ICEMU_CHECK DATA_DIR
set -euo pipefail
tool=$1 checker=$2 data=$3
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
setup() { # DIR: a run directory made of the recorded files
	mkdir -p "$1/vm" "$1/share/results"
	cp "$data/result.xml" "$1/share/results/"
	cp "$data/dmesg.txt" "$1/share/"
	cp "$data/marks.jsonl" "$1/vm/"
	gzip -dc "$data/ufs0.events.jsonl.gz" >"$1/vm/ufs0.events.jsonl"
}
setup "$w/good"
rc=0
"$tool" --vm "$w/good/vm" --share "$w/good/share" --checker "$checker" \
	--junit "$w/good/junit.xml" --json "$w/good/report.json" >"$w/good/out.txt" || rc=$?
[ "$rc" = 1 ] || { echo "FAIL: exit $rc with generic/576 failed, 1 expected"; exit 1; }
grep -q '^| generic/580 | pass | 29 | native | 6/6/4/2 | ok |  |$' "$w/good/out.txt" ||
	{ echo "FAIL: generic/580 not pass/native/ok:"; cat "$w/good/out.txt"; exit 1; }
grep -q '^| generic/548 | notrun | .* | ok | encryption policy ' "$w/good/out.txt" ||
	{ echo "FAIL: generic/548 not notrun"; cat "$w/good/out.txt"; exit 1; }
grep -q '^| generic/576 | fail | .* | ok | - output mismatch ' "$w/good/out.txt" ||
	{ echo "FAIL: generic/576 not fail"; cat "$w/good/out.txt"; exit 1; }
grep -q 'tests="3" failures="1" skipped="1"' "$w/good/junit.xml" || { echo "FAIL: junit counts"; exit 1; }
[ -s "$w/good/vm/per-test/generic-580.ufs0.events.jsonl" ] || { echo "FAIL: no per-test log"; exit 1; }

# The mutation: no eviction in the device log (the marks' byte offsets are recomputed).
setup "$w/bad"
python3 - "$w/bad/vm" <<'PY'
import json, sys
d = sys.argv[1]
lines = open(d + "/ufs0.events.jsonl", "rb").read().splitlines(keepends=True)
marks = [json.loads(l) for l in open(d + "/marks.jsonl")]
out, seq, off_map, pos, newpos = [], 0, {}, 0, 0
for l in lines:
    off_map[pos] = newpos
    pos += len(l)
    e = json.loads(l)
    if e["ev"] in ("evict", "disarm"):
        continue
    e["seq"] = seq
    seq += 1
    b = (json.dumps(e, separators=(",", ":")) + "\n").encode()
    out.append(b)
    newpos += len(b)
off_map[pos] = newpos
open(d + "/ufs0.events.jsonl", "wb").write(b"".join(out))
with open(d + "/marks.jsonl", "w") as f:
    for m in marks:
        m["logs"]["ufs0"] = off_map[m["logs"]["ufs0"]]
        f.write(json.dumps(m) + "\n")
PY
rc=0
"$tool" --vm "$w/bad/vm" --share "$w/bad/share" --checker "$checker" \
	--junit "$w/bad/junit.xml" >"$w/bad/out.txt" || rc=$?
[ "$rc" = 1 ] || { echo "FAIL: exit $rc with keys left in slots, 1 expected"; cat "$w/bad/out.txt"; exit 1; }
grep -q '^| generic/580 | fail | .* | FAIL | fstests: pass; device: .*keys-evicted: ' "$w/bad/out.txt" ||
	{ echo "FAIL: generic/580 not failed by keys-evicted:"; cat "$w/bad/out.txt"; exit 1; }
echo "ok: recorded run as recorded; without evictions generic/580 fails on the device verdict"

# check did not finish (no result.xml; the guest stopped during generic/580): the finished
# tests' results come from check's per-test files, the one in progress is a failure.
mkdir -p "$w/part"
setup "$w/part"
rm "$w/part/share/results/result.xml"
cp -r "$data/generic" "$w/part/share/results/"
head -n 3 "$data/marks.jsonl" >"$w/part/vm/marks.jsonl"
rc=0
"$tool" --vm "$w/part/vm" --share "$w/part/share" --checker "$checker" >"$w/part/out.txt" || rc=$?
[ "$rc" = 1 ] || { echo "FAIL: partial run exit $rc, 1 expected"; cat "$w/part/out.txt"; exit 1; }
grep -q '^| generic/548 | notrun | .* | encryption policy ' "$w/part/out.txt" &&
	grep -q '^| generic/576 | fail | .* | output mismatch (generic/576.out.bad) |$' "$w/part/out.txt" &&
	grep -q '^| generic/580 | fail | .* | did not finish (check stopped in it) |$' "$w/part/out.txt" ||
	{ echo "FAIL: partial run:"; cat "$w/part/out.txt"; exit 1; }
echo "ok: a run check did not finish is reported from its per-test files"

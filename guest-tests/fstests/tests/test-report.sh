#!/usr/bin/env bash
# fstests.report-recorded: icemu-fstests-report end to end on a recorded run (tests/data)
# with the real icemu-check: the table, the JUnit file and the exit status. The recorded
# generic/548 passes; the same run with its eviction events cut out of the log must fail
# generic/548 with the keys-evicted verdict although fstests passed it.
#   test-report.sh REPORT_TOOL ICEMU_CHECK DATA_DIR
set -euo pipefail
tool=$1 checker=$2 data=$3
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
setup() { # DIR: a run directory made of the recorded files
	mkdir -p "$1/vm" "$1/share/results"
	cp "$data/result.xml" "$1/share/results/"
	cp "$data/dmesg.txt" "$1/share/"
	cp "$data/marks.jsonl" "$data/ufs0.events.jsonl" "$1/vm/"
}
setup "$w/good"
"$tool" --vm "$w/good/vm" --share "$w/good/share" --checker "$checker" \
	--junit "$w/good/junit.xml" --json "$w/good/report.json" >"$w/good/out.txt"
grep -q '^| generic/548 | pass | .* | native | .* | ok | ' "$w/good/out.txt" ||
	{ echo "FAIL: generic/548 not pass/native/ok:"; cat "$w/good/out.txt"; exit 1; }
grep -q '^| generic/576 | notrun | ' "$w/good/out.txt" ||
	{ echo "FAIL: generic/576 not notrun"; cat "$w/good/out.txt"; exit 1; }
grep -q 'failures="0"' "$w/good/junit.xml" || { echo "FAIL: junit failures"; exit 1; }
[ -s "$w/good/vm/per-test/generic-548.ufs0.events.jsonl" ] || { echo "FAIL: no per-test log"; exit 1; }

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
    if e["ev"] == "evict" and e["was_armed"]:
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
grep -q '^| generic/548 | fail | .* | FAIL | fstests: pass; device: .*keys-evicted: ' "$w/bad/out.txt" ||
	{ echo "FAIL: generic/548 not failed by keys-evicted:"; cat "$w/bad/out.txt"; exit 1; }
echo "ok: recorded run passes; without evictions generic/548 fails on the device verdict"

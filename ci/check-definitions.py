#!/usr/bin/python3
"""ctest unit.ci-definitions: the CI fleet definitions (ci/*.yml) use only what icemu offers.

Checks, for ci/github-actions.yml and ci/gitlab-ci.yml:
  - the YAML parses;
  - every `./icemu CMD ...` a job runs names a command of the dispatcher (scripts/cmd/CMD.sh),
    and every --option it passes appears in that command's --help;
  - every `ci/run-group ...` passes options its --help lists and a group ci/groups.conf has;
  - every kernel series in a matrix is one `./icemu run --help` names;
and for ci/groups.conf that every scenario file is in exactly one group and every name is a
scenario. --self-test misspells an option, a group and a series in copies of the definitions
and requires each to be caught (so the check cannot pass on input it does not read).
"""
import copy
import json
import pathlib
import re
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
CI = ROOT / "ci"


def help_text(argv):
    r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def cached_help(cache, key, argv):
    if key not in cache:
        cache[key] = help_text(argv)
    return cache[key]


def groups():
    out = {}
    for line in (CI / "groups.conf").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, *scen = line.split()
            out[name] = scen
    return out


def items(node):
    """Every (key, value) pair of a YAML document, depth first."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield k, v
            yield from items(v)
    elif isinstance(node, list):
        for v in node:
            yield from items(v)


def commands(doc):
    """Every shell line of every job (GitHub `run:`, GitLab `script:` / `before_script:`)."""
    lines = []
    for k, v in items(doc):
        if k == "run" and isinstance(v, str):
            lines.extend(v.splitlines())
        elif k in ("script", "before_script") and isinstance(v, list):
            lines.extend(line for item in v for line in str(item).splitlines())
    return [l.strip() for l in lines if l.strip()]


def matrix_values(doc, names):
    """Values of matrix keys named in `names` (GitHub strategy.matrix / GitLab parallel.matrix)."""
    vals = []
    for k, v in items(doc):
        if k in names:
            vals.extend(v if isinstance(v, list) else [v])
    return [str(v) for v in vals]


def check(docs, grp, helps):
    errors = []
    for name, doc in docs.items():
        cmds = commands(doc)
        if not any(c.startswith("./icemu test") for c in cmds):
            errors.append(f"{name}: no job runs ./icemu test (README's test command)")
        for c in cmds:
            # GitHub expressions (${{ matrix.x }}) and shell variables stand for matrix values,
            # which are checked separately below
            words = re.sub(r"\$\{\{[^}]*\}\}", "$MATRIX", c).replace('"', " ").split()
            if not words:
                continue
            if words[0] == "./icemu":
                cmd = words[1] if len(words) > 1 else ""
                if not (ROOT / "scripts" / "cmd" / f"{cmd}.sh").is_file():
                    errors.append(f"{name}: ./icemu has no command '{cmd}': {c}")
                    continue
                opts, h = words[2:], cached_help(helps, cmd, ["./icemu", cmd, "--help"])
            elif words[0] == "ci/run-group":
                opts, h = words[1:], cached_help(helps, "run-group", ["ci/run-group", "--help"])
                operands = [w for i, w in enumerate(opts) if not w.startswith("-")
                            and not (i and opts[i - 1] == "--kernel-series")]
                for g in operands:
                    if not g.startswith("$") and g not in grp:
                        errors.append(f"{name}: ci/run-group names no group '{g}': {c}")
            else:
                continue
            for o in opts:
                if o.startswith("--") and not re.search(re.escape(o) + r"\b", h):
                    errors.append(f"{name}: option {o} is not in the command's --help: {c}")
        for g in matrix_values(doc, ("group", "GROUP")):
            if g not in grp:
                errors.append(f"{name}: matrix group '{g}' is not in ci/groups.conf")
        run_help = cached_help(helps, "run", ["./icemu", "run", "--help"])
        series = re.search(r"--kernel-series ([0-9.|]+)", run_help).group(1).split("|")
        for k in matrix_values(doc, ("kernel", "KERNEL")):
            if k not in series:
                errors.append(f"{name}: kernel series '{k}' is not one of {series} (./icemu run --help)")
    # The fleet runs the default set; a scenario with "default": false (not yet reliable)
    # is in no group.
    scenarios, manual = set(), set()
    for p in (ROOT / "guest-tests" / "scenarios").glob("*.json"):
        (manual if json.loads(p.read_text()).get("default", True) is False else scenarios).add(p.stem)
    seen = {}
    for g, names in grp.items():
        for s in names:
            if s in manual:
                errors.append(f"groups.conf: {s} is not in the default set (\"default\": false) but in group {g}")
            elif s not in scenarios:
                errors.append(f"groups.conf: group {g} names no scenario '{s}'")
            if s in seen:
                errors.append(f"groups.conf: {s} is in groups {seen[s]} and {g}")
            seen[s] = g
    for s in sorted(scenarios - seen.keys()):
        errors.append(f"groups.conf: scenario {s} is in no group")
    return errors


def main():
    docs = {p.name: yaml.safe_load(p.read_text()) for p in sorted(CI.glob("*.yml"))}
    if len(docs) < 2:
        raise SystemExit("expected ci/github-actions.yml and ci/gitlab-ci.yml")
    grp, helps = groups(), {}
    errors = check(docs, grp, helps)
    if "--self-test" in sys.argv:
        # Each mutation must produce an error the clean definitions do not.
        def mutate(fn):
            d = copy.deepcopy(docs)
            fn(d)
            return check(d, grp, helps)

        def edit_runs(d, old, new):
            for _, v in list(items(d)):
                if isinstance(v, dict):
                    for k, x in v.items():
                        if isinstance(x, str):
                            v[k] = x.replace(old, new)
                        elif isinstance(x, list):
                            v[k] = [y.replace(old, new) if isinstance(y, str) else y for y in x]

        cases = {
            "a misspelt option": lambda d: edit_runs(d, "--kernel-series", "--kernel-serie"),
            "an unknown command": lambda d: edit_runs(d, "./icemu test", "./icemu tset"),
            "an unknown group": lambda d: d["gitlab-ci.yml"]["icemu-conformance"]["parallel"]["matrix"][0].update(GROUP=["ufs", "emc"]),
            "an unknown kernel series": lambda d: d["github-actions.yml"]["jobs"]["conformance"]["strategy"]["matrix"].update(kernel=["7", "5.4"]),
        }
        for what, fn in cases.items():
            if len(mutate(fn)) <= len(errors):
                errors.append(f"self-test: {what} was not caught")
            else:
                print(f"ok - self-test: {what} is caught")
        grp_bad = dict(grp, ufs=grp["ufs"][1:])
        if not check(docs, grp_bad, helps):
            errors.append("self-test: a scenario left out of every group was not caught")
        else:
            print("ok - self-test: a scenario in no group is caught")
    for e in errors:
        print("FAIL:", e)
    if not errors:
        print(f"ok - {', '.join(docs)} and groups.conf use only what icemu offers")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The rows of issue 12 in one table, and the regression check of `make bench`.

Reads the output of the benchmarks (scripts/run-bench.sh tees it here) for lines

    BENCH <key> <value>

compares each value with the one recorded in bench/baseline.json (the figures of
docs/performance.md) and prints, per row: the value now, the value recorded, the
target of the issue and the verdict. A row regresses when it is more than 20 %
worse than recorded: a ratio where higher is better below 0.8 x the record, a
figure where lower is better (a time, bytes, a ratio to the baseline system)
above record / 0.8. Exit status 1 if any row regressed, 0 otherwise; rows the
run did not produce (a part skipped for a missing tool) are listed as such.

    scripts/bench-check.py [LOG] [--baseline bench/baseline.json] [--margin 0.2]
"""
import argparse
import json
import os
import re
import sys


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("log", nargs="?", default="-")
    ap.add_argument("--baseline", default=os.path.join(here, "..", "bench", "baseline.json"))
    ap.add_argument("--margin", type=float, default=0.2)
    a = ap.parse_args()
    with open(a.baseline) as f:
        base = json.load(f)
    text = sys.stdin.read() if a.log == "-" else open(a.log).read()
    got = {}
    for m in re.finditer(r"^BENCH\s+(\S+)\s+([-+0-9.eE]+)\s*$", text, re.M):
        got.setdefault(m.group(1), []).append(float(m.group(2)))
    rows = base["rows"]
    w = max(len(r["row"]) for r in rows.values())
    print(f"{'row':<{w}}  {'now':>9}  {'recorded':>9}  {'target':>9}  verdict")
    bad = 0
    for key, r in rows.items():
        hib = r["higher_is_better"]
        rec = r["recorded"]
        tgt = r.get("target")
        tgt_s = "" if tgt is None else ((">= " if hib else "<= ") + f"{tgt:g}")
        if key not in got:
            print(f"{r['row']:<{w}}  {'-':>9}  {rec:>9g}  {tgt_s:>9}  not measured in this run")
            continue
        # several lines for one key (repeated runs in one log): the median
        v = sorted(got[key])[len(got[key]) // 2]
        if hib:
            regressed = v < rec * (1 - a.margin)
        else:
            regressed = v > rec / (1 - a.margin)
        met = tgt is None or (v >= tgt if hib else v <= tgt)
        verdict = "REGRESSED" if regressed else "ok"
        verdict += "" if tgt is None else (", target met" if met else ", target not met")
        bad += regressed
        print(f"{r['row']:<{w}}  {v:>9.3g}  {rec:>9g}  {tgt_s:>9}  {verdict}")
    unknown = sorted(set(got) - set(rows))
    if unknown:
        print("not in the baseline (ignored): " + ", ".join(unknown))
    if bad:
        print(f"bench-check: {bad} row(s) more than {a.margin:.0%} worse than recorded "
              f"in {os.path.relpath(a.baseline)}")
        return 1
    print("bench-check: no row more than %d %% worse than recorded" % round(a.margin * 100))
    return 0


if __name__ == "__main__":
    sys.exit(main())

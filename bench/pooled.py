#!/usr/bin/env python3
"""Pools the rounds of several benchmark runs into one paired comparison per column.

Each run's rounds measure every row back to back, so a ratio within one round cancels most of the machine's
drift; one run of 5 or 7 rounds is still too few to tell a 4 % difference from a coin toss. This reads the
raw samples of any number of runs (bench/results/*.json, or REV:PATH for a version in git history) and
prints, for tailgate (or --subject) against each other proxy: the number of paired rounds, the geometric
mean of the per-round ratios with a 95 % bootstrap interval, in how many rounds the subject did better, and
the two-sided sign test's p-value for that count.

    bench/pooled.py bench/results/2026-11-23-vm.json 7224b8d:bench/results/2026-11-22-vm.json

A run where the binary under study was measured as another row (a --candidate run) names that row after
an "=": `bench/results/2026-11-23-vm-handover40-keepalive-1.json=candidate` pools that run's candidate row
as the subject, and its own subject row is then left out of the others.
"""
import argparse
import json
import math
import os
import random
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import COLUMNS, HIGHER_IS_BETTER, round_ratios  # noqa: E402  (the benchmark's own columns and pairing)


def load(source):
    """A results JSON: a file, or REV:PATH read from git."""
    if not os.path.exists(source) and ":" in source:
        text = subprocess.run(["git", "-C", ROOT, "show", source], capture_output=True, text=True, check=True).stdout
        return json.loads(text)
    with open(source) as f:
        return json.load(f)


def sign_test(better, n):
    """Two-sided exact binomial test of `better` out of `n` against one half."""
    probability = [math.comb(n, i) / 2 ** n for i in range(n + 1)]
    return min(1.0, sum(p for p in probability if p <= probability[better] * (1 + 1e-9)))


def bootstrap_interval(ratios, draws=4000):
    rng = random.Random(1)
    logs = [math.log(q) for q in ratios]
    means = sorted(sum(rng.choice(logs) for _ in logs) / len(logs) for _ in range(draws))
    return math.exp(means[int(0.025 * draws)]), math.exp(means[int(0.975 * draws) - 1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="results JSON files, or REV:PATH; =ROW after one names its subject row")
    p.add_argument("--subject", default="tailgate", help="the row divided by the others (default tailgate)")
    args = p.parse_args()
    runs = []
    for source in args.runs:
        path, _, row = source.rpartition("=") if "=" in source else (source, "", args.subject)
        runs.append((load(path), row))
    others = [o for o in ("tailgate", "haproxy", "nginx") if o != args.subject]
    named = sorted({row for _, row in runs} - {args.subject})
    print(f"{len(runs)} run(s): {args.subject} ÷ other, paired by round"
          + (f" (the {', '.join(named)} row as {args.subject} where a run names it)" if named else "") + "\n")
    print("| column | " + " | ".join(f"÷ {o}" for o in others) + " |")
    print("|---" + "|---:" * len(others) + "|")
    for header, metric, key, _ in COLUMNS:
        cells = []
        for other in others:
            ratios = [q for run, row in runs if row != other
                      for q in round_ratios(run["samples"], row, other, metric, key) if q]
            if len(ratios) < 2:
                cells.append("—")
                continue
            better = sum(1 for q in ratios if (q > 1 if key in HIGHER_IS_BETTER else q < 1))
            mean = math.exp(sum(math.log(q) for q in ratios) / len(ratios))
            low, high = bootstrap_interval(ratios)
            cells.append(f"×{mean:.3f} [{low:.3f}, {high:.3f}], {better}/{len(ratios)}, "
                         f"p = {sign_test(better, len(ratios)):.2g}")
        if any(c != "—" for c in cells):
            print(f"| {header.format(hold='').replace(' @', '')} | " + " | ".join(cells) + " |")
    print("\n×geometric mean of the per-round ratios [95 % bootstrap interval], rounds where "
          f"{args.subject} did better, two-sided sign test")
    return 0


if __name__ == "__main__":
    sys.exit(main())

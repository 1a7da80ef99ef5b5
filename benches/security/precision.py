"""Samples Conductor's findings on the benchmark corpus for a precision review.

Usage: python3 benches/security/precision.py [--per-rule N] [--seed S]
Reads .scratch/conductor.json (written by run.sh) and prints, per rule, up to N findings
(seeded random sample) with two lines of context, so a reviewer can mark each real or false.
"""

import argparse
import json
import random
from collections import defaultdict
from pathlib import Path

here = Path(__file__).resolve().parent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-rule", type=int, default=10)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--input", default=str(here / ".scratch" / "conductor.json"))
    args = ap.parse_args()
    data = json.loads(Path(args.input).read_text())
    by_rule = defaultdict(list)
    for f in data["findings"]:
        by_rule[f["rule_id"]].append(f)
    rng = random.Random(args.seed)
    for rule in sorted(by_rule):
        found = by_rule[rule]
        sample = rng.sample(found, min(args.per_rule, len(found)))
        print(f"## {rule}: {len(found)} findings, {len(sample)} sampled")
        for f in sample:
            lines = Path(f["file"]).read_text(errors="replace").splitlines()
            line = f["line"]
            start, end = max(1, line - 2), min(len(lines), line + 2)
            short = f["file"].split("/corpus/")[-1]
            print(f"- {short}:{line}")
            for n in range(start, end + 1):
                mark = ">" if n == line else " "
                print(f"    {mark} {lines[n - 1][:160]}")
        print()


if __name__ == "__main__":
    main()

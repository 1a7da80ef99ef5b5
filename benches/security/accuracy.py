#!/usr/bin/env python3
"""Precision and recall of `conductor scan` on the labelled corpus in `corpus/`.

Every line ending in `// VULN: CWE-n` must be reported with that CWE (among the finding's
CWEs); `// SAFE: CWE-n` lines and unlabelled lines must not be reported. A finding counts
once per (file, line, CWE class): a true positive when the line is labelled VULN with one of
the finding's CWEs, else a false positive, filed under the label's CWE when it is one of the
finding's and under the finding's first CWE otherwise. Prints a table per CWE and the overall figures.

Usage: accuracy.py --conductor PATH [--corpus DIR] [--json]
"""
import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

LABEL = re.compile(r"//\s*(VULN|SAFE):\s*(CWE-\d+)")


def labels(corpus):
    out = {}
    for name in sorted(os.listdir(corpus)):
        if not name.endswith(".rs"):
            continue
        with open(os.path.join(corpus, name), encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                m = LABEL.search(line)
                if m:
                    out[(name, number)] = (m.group(1), m.group(2))
    return out


def scan(conductor, corpus):
    # A copy outside any Cargo workspace, so that no configuration or ignore file of the
    # repository applies to it.
    with tempfile.TemporaryDirectory(prefix="conductor-accuracy-") as tmp:
        target = os.path.join(tmp, "corpus")
        shutil.copytree(corpus, target)
        run = subprocess.run(
            [conductor, "scan", target, "--format", "json", "--fail-on", "never"],
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode != 0:
            sys.exit(f"accuracy: conductor scan failed ({run.returncode}): {run.stderr}")
        report = json.loads(run.stdout)
        findings = []
        for f in report["findings"]:
            findings.append((os.path.basename(f["file"]), f["line"], f["cwe"], f["rule_id"]))
        return findings


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conductor", required=True)
    ap.add_argument("--corpus", default=os.path.join(here, "corpus"))
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--misses", action="store_true", help="list missed and false lines")
    args = ap.parse_args()

    truth = labels(args.corpus)
    findings = scan(args.conductor, args.corpus)
    tp = collections.Counter()
    fp = collections.Counter()
    fn = collections.Counter()
    found = set()  # (file, line, cwe) reported with a matching CWE
    false_lines = set()
    for file, line, cwes, rule in findings:
        label = truth.get((file, line))
        if label and label[0] == "VULN" and label[1] in cwes:
            found.add((file, line, label[1]))
        else:
            cwe = label[1] if label and label[1] in cwes else (cwes[0] if cwes else "none")
            false_lines.add((file, line, cwe, rule))
    for file, line, cwe in found:
        tp[cwe] += 1
    for file, line, cwe, _ in {(f, l, c, "") for f, l, c, _ in false_lines}:
        fp[cwe] += 1
    missed = []
    for (file, line), (kind, cwe) in truth.items():
        if kind == "VULN" and (file, line, cwe) not in found:
            fn[cwe] += 1
            missed.append((file, line, cwe))

    def ratio(a, b):
        return a / b if b else None

    classes = sorted(set(tp) | set(fp) | set(fn) | {c for _, c in truth.values()},
                     key=lambda c: int(c.split("-")[1]) if c.startswith("CWE-") else 0)
    rows = []
    for c in classes:
        vuln = sum(1 for k, cc in truth.values() if k == "VULN" and cc == c)
        safe = sum(1 for k, cc in truth.values() if k == "SAFE" and cc == c)
        rows.append({
            "cwe": c, "vulnerable": vuln, "safe": safe, "tp": tp[c], "fp": fp[c], "fn": fn[c],
            "precision": ratio(tp[c], tp[c] + fp[c]), "recall": ratio(tp[c], tp[c] + fn[c]),
        })
    total_tp, total_fp, total_fn = sum(tp.values()), sum(fp.values()), sum(fn.values())
    overall = {
        "labelled_lines": len(truth),
        "real_world_lines": sum(1 for (f, _) in truth if f.startswith("real_")),
        "tp": total_tp, "fp": total_fp, "fn": total_fn,
        "precision": ratio(total_tp, total_tp + total_fp),
        "recall": ratio(total_tp, total_tp + total_fn),
    }
    if args.json:
        print(json.dumps({"classes": rows, "overall": overall}, indent=2))
        return
    fmt = lambda v: "  -  " if v is None else f"{v:.2f}"
    print(f"{'class':<9} {'vuln':>4} {'safe':>4} {'tp':>4} {'fp':>4} {'fn':>4} {'prec':>5} {'recall':>6}")
    for r in rows:
        print(f"{r['cwe']:<9} {r['vulnerable']:>4} {r['safe']:>4} {r['tp']:>4} {r['fp']:>4} {r['fn']:>4} "
              f"{fmt(r['precision']):>5} {fmt(r['recall']):>6}")
    print(f"{'overall':<9} {sum(r['vulnerable'] for r in rows):>4} {sum(r['safe'] for r in rows):>4} "
          f"{total_tp:>4} {total_fp:>4} {total_fn:>4} {fmt(overall['precision']):>5} {fmt(overall['recall']):>6}")
    print(f"{overall['labelled_lines']} labelled lines, {overall['real_world_lines']} adapted from real-world code")
    if args.misses:
        for f, l, c in sorted(missed):
            print(f"missed  {f}:{l} {c}")
        for f, l, c, r in sorted(false_lines):
            print(f"false   {f}:{l} {c} {r}")


if __name__ == "__main__":
    main()

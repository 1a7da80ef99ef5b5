"""Runs Conductor, ast-grep and semgrep over one corpus and prints a comparison table.

Called by run.sh, which prepares the tools and the corpus. Wall time is the median of --runs
runs (semgrep: one run, it is slow); CPU% is user+system time over wall time, so 200% means
both cores were busy.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import time
from pathlib import Path


def run(cmd, out_file, cwd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(out_file, "wb") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.DEVNULL, cwd=cwd)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.returncode


def corpus_size(corpus):
    files = lines = 0
    for path in Path(corpus).rglob("*.rs"):
        if path.is_file():
            files += 1
            with open(path, "rb") as f:
                lines += f.read().count(b"\n")
    return files, lines


def count_conductor(path):
    data = json.loads(Path(path).read_text())
    return len(data["findings"]), data["files_scanned"]


def count_ast_grep(path):
    text = Path(path).read_text().strip()
    return len(json.loads(text)) if text else 0, None


def count_semgrep(path):
    data = json.loads(Path(path).read_text())
    scanned = len(data.get("paths", {}).get("scanned", []))
    return len(data["results"]), scanned or None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conductor", required=True)
    ap.add_argument("--ast-grep", required=True)
    ap.add_argument("--semgrep", required=True)
    ap.add_argument("--rules", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--skip-semgrep", action="store_true")
    args = ap.parse_args()

    corpus = os.path.abspath(args.corpus)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    files, lines = corpus_size(corpus)
    # The tools run with the rules folder as their working directory: every path given to
    # them is made absolute first (a relative one would be read from inside that folder).
    rules = Path(args.rules).resolve()
    for tool in ("conductor", "ast_grep", "semgrep"):
        given = getattr(args, tool)
        if os.sep in given:
            setattr(args, tool, os.path.abspath(given))
    tools = [
        ("conductor", [args.conductor, "scan", corpus, "--format", "json", "--fail-on", "never"],
         count_conductor, args.runs),
        ("ast-grep", [args.ast_grep, "scan", "-c", str(rules / "ast-grep" / "sgconfig.yml"),
                      "--json=compact", "--no-ignore", "vcs", "--no-ignore", "parent", corpus],
         count_ast_grep, args.runs),
    ]
    if not args.skip_semgrep:
        tools.append(("semgrep", [args.semgrep, "scan", "--config", str(rules / "semgrep" / "rules.yml"),
                                  "--metrics=off", "--disable-version-check", "--no-git-ignore",
                                  "--json", "--quiet", corpus],
                      count_semgrep, 1))
    results = []
    for name, cmd, counter, runs in tools:
        walls, cpus = [], []
        for _ in range(runs):
            wall, cpu, _code = run(cmd, out / f"{name}.json", cwd=rules)
            walls.append(wall)
            cpus.append(cpu)
        findings, scanned = counter(out / f"{name}.json")
        results.append((name, scanned, statistics.median(walls), statistics.median(cpus), findings))

    base = results[0][2]
    print(f"corpus: {corpus}")
    print(f"{files} .rs files, {lines} lines")
    print()
    print(f"{'tool':<10} {'files':>7} {'wall s':>8} {'cpu %':>6} {'findings':>9} {'time vs conductor':>18}")
    for name, scanned, wall, cpu, findings in results:
        shown = str(scanned) if scanned is not None else "-"
        print(f"{name:<10} {shown:>7} {wall:>8.2f} {100 * cpu / wall:>6.0f} {findings:>9} {wall / base:>17.1f}x")


if __name__ == "__main__":
    main()

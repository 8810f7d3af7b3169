#!/usr/bin/env python3
"""Refreshes what `megatron plan --published-runs` feeds: the README's published-runs table and
the errors `PublishedRunsTests` pins. Run it after a change to the GPU time model, then read the
diff: every moved row is a change in what the planner predicts.

    python3 scripts/reference/published_runs_refresh.py [--binary .build/debug/megatron]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
README = os.path.join(ROOT, "README.md")
TEST = os.path.join(ROOT, "Tests", "PlannerTests", "PublishedRunsTests.swift")


def write_atomically(path, text):
    """Replaces `path` with `text` through a temporary file, keeping the file's permissions."""
    directory = os.path.dirname(path)
    with tempfile.NamedTemporaryFile("w", dir=directory, delete=False) as handle:
        handle.write(text)
    os.chmod(handle.name, os.stat(path).st_mode & 0o7777)
    os.replace(handle.name, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "debug", "megatron"))
    args = parser.parse_args()

    table = subprocess.run([args.binary, "plan", "--published-runs"], check=True, capture_output=True,
                           text=True).stdout.strip().splitlines()
    rows = json.loads(subprocess.run([args.binary, "plan", "--published-runs", "--json"], check=True,
                                     capture_output=True, text=True).stdout)

    readme = open(README).read()
    start = readme.index("| run | layout | GPUs | published TFLOP/s")
    end = readme.index(" * implied by the published TFLOP/s.", start) + len(" * implied by the published TFLOP/s.")
    readme = readme[:start] + "\n".join(table) + readme[end:]
    write_atomically(README, readme)

    pins = []
    for row in rows:
        tflops = (row["predicted_tflops_per_gpu"] / row["published_tflops_per_gpu"] - 1) * 100
        seconds = (row["predicted_iteration_time_s"] / row["published_iteration_time_s"] - 1) * 100
        pins.append(f'        "{row["name"]}": ({tflops:.1f}, {seconds:.1f})')
    test = open(TEST).read()
    block = re.compile(r"(static let pinnedErrors: KeyValuePairs<String, \(tflops: Double, seconds: Double\)> = \[\n)"
                       r"(.*?)(\n    \])", re.S)
    if not block.search(test):
        sys.exit(f"error: no pinnedErrors block in {TEST}")
    test = block.sub(lambda m: m.group(1) + ",\n".join(pins) + m.group(3), test, count=1)
    write_atomically(TEST, test)
    print(f"{len(rows)} rows: README table and {os.path.relpath(TEST, ROOT)} refreshed")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Side-by-side benchmark: `megatron bench` and the PyTorch reference, alternating, several runs.

Each run starts a fresh process of each program (so peak memory is per process); the table gives
the median over runs of each program's median ms/step, its tokens/s and peak memory.

    swift build -c release
    python3 scripts/reference/compare_bench.py --config M --runs 3 --steps 3
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def run_json(command):
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(output.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="M")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "megatron"))
    args = parser.parse_args()
    results = {"megatron-swift": [], "pytorch": []}
    for run in range(args.runs):
        ours = run_json([args.binary, "bench", "--config", args.config, "--steps", str(args.steps), "--json"])
        theirs = run_json([sys.executable, os.path.join(HERE, "pytorch_bench.py"), "--config", args.config,
                           "--steps", str(args.steps)])
        results["megatron-swift"].append(ours)
        results["pytorch"].append(theirs)
        print(f"run {run + 1}: megatron-swift {ours['tokensPerSecond']:.1f} tok/s, "
              f"pytorch {theirs['tokensPerSecond']:.1f} tok/s", file=sys.stderr, flush=True)
    print(f"config {args.config}: median of {args.runs} runs x {args.steps} timed steps")
    print(f"{'program':<16} {'ms/step':>10} {'tokens/s':>10} {'peak MiB':>10}")
    for name, rows in results.items():
        ms = statistics.median(r["msPerStep"] for r in rows)
        tps = statistics.median(r["tokensPerSecond"] for r in rows)
        mem = statistics.median(r["peakMemoryMiB"] for r in rows)
        print(f"{name:<16} {ms:>10.1f} {tps:>10.1f} {mem:>10.1f}")
    mfu = statistics.median(r["mfu"] for r in results["megatron-swift"])
    peak = statistics.median(r["gemmPeakGFLOPs"] for r in results["megatron-swift"])
    print(f"megatron-swift MFU {100 * mfu:.1f}% of a measured sgemm peak of {peak:.1f} GFLOP/s")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Predicted (`megatron plan --cluster local`) against measured (`megatron bench`) step times.

Runs both for the bench configurations S and M (single rank, fp32, the layout the runtime
supports today), alternating fresh processes, and prints the medians and the relative error.

    swift build -c release && python3 scripts/reference/plan_vs_bench.py --runs 3
"""
import argparse
import json
import statistics
import subprocess

SHAPES = {
    "S": dict(layers=4, hidden=256, heads=4, seq=256, vocab=8192, micro=8),
    "M": dict(layers=6, hidden=384, heads=6, seq=512, vocab=50304, micro=4),
}


def run(arguments):
    return json.loads(subprocess.run(arguments, check=True, capture_output=True, text=True).stdout)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=".build/release/megatron")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    print("| config | predicted ms/step | measured ms/step (median) | error |")
    print("|---|---|---|---|")
    for name, s in SHAPES.items():
        predicted, measured = [], []
        for _ in range(args.runs):
            plan = run([args.binary, "plan", "--cluster", "local", "--json",
                        "--num-layers", str(s["layers"]), "--hidden-size", str(s["hidden"]),
                        "--num-attention-heads", str(s["heads"]), "--seq-length", str(s["seq"]),
                        "--vocab-size", str(s["vocab"]), "--micro-batch-size", str(s["micro"]),
                        "--global-batch-size", str(s["micro"])])
            predicted.append(plan["iteration_time_s"] * 1000)
            bench = run([args.binary, "bench", "--config", name, "--steps", str(args.steps), "--json"])
            measured.append(bench["msPerStep"])
        p, m = statistics.median(predicted), statistics.median(measured)
        print(f"| {name} | {p:.0f} | {m:.0f} | {100 * (p / m - 1):+.1f}% |")


if __name__ == "__main__":
    main()

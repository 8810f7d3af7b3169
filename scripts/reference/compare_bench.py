#!/usr/bin/env python3
"""Side-by-side benchmark: `megatron bench` and the PyTorch reference, alternating, several runs.

Each run starts a fresh process of each program (so peak memory is per process); the table gives
the median over runs of each program's median ms/step, its tokens/s and peak memory.

    swift build -c release
    python3 scripts/reference/compare_bench.py --config M --runs 3 --steps 3 [--bf16] [--compile]

`--bf16` runs both sides in bf16 (ours `--bf16`, PyTorch's CPU autocast); `--compile` adds
PyTorch with torch.compile as a third program.
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
    parser.add_argument("--bf16", action="store_true", help="both sides in bf16")
    parser.add_argument("--compile", action="store_true", help="also PyTorch with torch.compile")
    args = parser.parse_args()
    precision = ["--bf16"] if args.bf16 else []
    reference = [sys.executable, os.path.join(HERE, "pytorch_bench.py"), "--config", args.config,
                 "--steps", str(args.steps)] + precision
    programs = {
        "megatron-swift": [args.binary, "bench", "--config", args.config, "--steps", str(args.steps), "--json"] + precision,
        "pytorch": reference,
    }
    if args.compile:
        programs["pytorch compile"] = reference + ["--compile", "--warmup", "2"]
    results = {name: [] for name in programs}
    for run in range(args.runs):
        for name, command in programs.items():
            results[name].append(run_json(command))
        line = ", ".join(f"{name} {rows[-1]['tokensPerSecond']:.1f} tok/s" for name, rows in results.items())
        print(f"run {run + 1}: {line}", file=sys.stderr, flush=True)
    print(f"config {args.config} {'bf16' if args.bf16 else 'fp32'}: median of {args.runs} runs x {args.steps} timed steps")
    print(f"{'program':<16} {'ms/step':>10} {'tokens/s':>10} {'peak MiB':>10}")
    for name, rows in results.items():
        ms = statistics.median(r["msPerStep"] for r in rows)
        tps = statistics.median(r["tokensPerSecond"] for r in rows)
        mem = statistics.median(r["peakMemoryMiB"] for r in rows)
        print(f"{name:<16} {ms:>10.1f} {tps:>10.1f} {mem:>10.1f}")
    mfu = statistics.median(r["mfu"] for r in results["megatron-swift"])
    peak = statistics.median(r["gemmPeakGFLOPs"] for r in results["megatron-swift"])
    gemm = "bf16 GEMM" if args.bf16 else "sgemm"
    print(f"megatron-swift MFU {100 * mfu:.1f}% of a measured {gemm} peak of {peak:.1f} GFLOP/s")


if __name__ == "__main__":
    main()

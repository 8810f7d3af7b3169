#!/usr/bin/env python3
"""Predicted (`megatron plan --cluster local`) against measured (`megatron bench`) memory.

For the bench configurations M and 124M, with no, selective and full recomputation, in fp32 and
bf16, prints the planner's predicted memory (weights, gradients, optimizer state, activations
and scratch of this binary's implementation profile) next to the peak resident memory `megatron
bench` measured, and the relative error. The measured peak also holds what the prediction leaves
out: the binary and its libraries, thread stacks, OpenBLAS's and oneDNN's own buffers.

    swift build -c release && python3 scripts/reference/plan_memory_vs_bench.py [--configs M 124M]
"""
import argparse
import json
import subprocess

SHAPES = {  # layers, hidden, heads, seq, vocab, micro-batch (megatron bench's configurations)
    "M": (6, 384, 6, 512, 50304, 4),
    "124M": (12, 768, 12, 1024, 50304, 4),
}


def run(arguments):
    output = subprocess.run(arguments, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=".build/release/megatron")
    parser.add_argument("--configs", nargs="+", default=["M", "124M"], choices=sorted(SHAPES))
    args = parser.parse_args()
    mib = 1 << 20
    print("| config | precision | recompute | predicted MiB | measured peak MiB | error |")
    print("|---|---|---|---|---|---|")
    for name in args.configs:
        layers, hidden, heads, seq, vocab, micro = SHAPES[name]
        for precision in ["fp32", "bf16"]:
            for recompute in ["none", "selective", "full"]:
                flags = ["--bf16"] if precision == "bf16" else []
                plan = run([args.binary, "plan", "--cluster", "local", "--num-layers", str(layers),
                            "--hidden-size", str(hidden), "--num-attention-heads", str(heads),
                            "--seq-length", str(seq), "--vocab-size", str(vocab), "--micro-batch-size", str(micro),
                            "--global-batch-size", str(micro), "--recompute-granularity", recompute, "--json"] + flags)
                bench_flags = [] if recompute == "none" else ["--recompute-granularity", recompute]
                bench = run([args.binary, "bench", "--config", name, "--steps", "1", "--warmup", "1", "--json"]
                            + bench_flags + flags)
                predicted = plan["memory_per_device_bytes"] / mib
                measured = bench["peakMemoryMiB"]
                print(f"| {name} | {precision} | {recompute} | {predicted:.0f} | {measured:.0f} | "
                      f"{(predicted - measured) / measured * 100:+.1f}% |", flush=True)


if __name__ == "__main__":
    main()

"""Predicted (`megatron plan --cluster local`) against measured (`megatron train`) time per
iteration and peak memory, over runs of different shapes, micro-batch sizes, precisions,
recomputation settings and layouts of at most 2 ranks (rank threads; with more ranks than the 2
cores the OS scheduler, not the model, would be measured).

The planner adds the iteration up from kernel micro-benchmarks of this machine (cached under
~/.cache/megatron-swift/ by its first run); nothing is fitted to these runs. Each run trains
`--iters` iterations on the bundled corpus (GPT-2 vocabulary, no dropout) and the measured time is
the median `ms_per_iter` of the iterations after the first two, and their best: the planner's
kernel timings are each the best of several calls, the machine undisturbed, so the best iteration
is the like-for-like comparison and the median what a user sees; the peak is the process's peak
resident memory against the planner's memory per device times the ranks plus what the process
holds before allocating (the planner's own resident memory at its start).

    swift build -c release && python3 scripts/reference/plan_time_vs_train.py [--iters 6]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plan_memory_vs_train import TOKENIZER, bundled_corpus  # noqa: E402

# name, layers, hidden, heads, seq, micro-batch, global batch, extra flags (layout, precision, recompute)
RUNS = [
    ("S fp32", 4, 256, 4, 256, 4, 4, []),
    ("S bf16", 4, 256, 4, 256, 4, 4, ["--bf16"]),
    ("M fp32 b2", 6, 384, 6, 512, 2, 2, []),
    ("M full recompute", 6, 384, 6, 512, 2, 2, ["--recompute-granularity", "full"]),
    ("M selective", 6, 384, 6, 512, 2, 2, ["--recompute-granularity", "selective"]),
    ("M bf16 b4", 6, 384, 6, 512, 4, 4, ["--bf16"]),
    ("L fp32", 8, 512, 8, 256, 4, 4, []),
    ("L bf16", 8, 512, 8, 256, 4, 4, ["--bf16"]),
    ("124M fp32", 12, 768, 12, 1024, 1, 1, []),
    ("124M bf16 b2", 12, 768, 12, 1024, 2, 2, ["--bf16"]),
    ("M TP 2", 6, 384, 6, 512, 2, 2, ["--tensor-model-parallel-size", "2"]),
    ("L TP 2 SP", 8, 512, 8, 256, 4, 4, ["--tensor-model-parallel-size", "2", "--sequence-parallel"]),
    ("M DP 2", 6, 384, 6, 512, 2, 4, ["--data-parallel-size", "2"]),
    ("L DP 2 ZeRO bf16", 8, 512, 8, 256, 2, 4, ["--data-parallel-size", "2", "--use-distributed-optimizer", "--bf16"]),
    ("L PP 2", 8, 512, 8, 256, 2, 8, ["--pipeline-model-parallel-size", "2"]),
]


def plan_flags(extra):
    """The flags `megatron plan` takes of a run's extra flags."""
    flags, i = [], 0
    while i < len(extra):
        if extra[i] in ("--bf16", "--fp16", "--sequence-parallel", "--use-distributed-optimizer"):
            flags.append(extra[i])
            i += 1
        else:
            flags += extra[i:i + 2]
            i += 2
    if "--data-parallel-size" not in flags:
        flags += ["--data-parallel-size", "1"]
    return flags


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=".build/release/megatron")
    parser.add_argument("--iters", type=int, default=6)
    args = parser.parse_args()
    mib = 1 << 20
    work, prefix = bundled_corpus(args.binary)
    tokenizer = TOKENIZER
    print("| run | ranks | predicted ms/iter | median ms/iter | error | best ms/iter | error | predicted MiB | peak MiB | error |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    errors = []
    for name, layers, hidden, heads, seq, micro, batch, extra in RUNS:
        shape = ["--num-layers", str(layers), "--hidden-size", str(hidden), "--num-attention-heads", str(heads),
                 "--seq-length", str(seq), "--micro-batch-size", str(micro), "--global-batch-size", str(batch)]
        ranks = 1
        for flag in ("--tensor-model-parallel-size", "--pipeline-model-parallel-size", "--data-parallel-size"):
            if flag in extra:
                ranks *= int(extra[extra.index(flag) + 1])
        plan = subprocess.run([args.binary, "plan", "--cluster", "local", "--vocab-size", "50257", "--json"]
                              + shape + plan_flags(extra), check=True, capture_output=True, text=True)
        predicted = json.loads(plan.stdout)
        metrics = os.path.join(work, name.replace(" ", "_") + ".jsonl")
        subprocess.run([args.binary, "train", "--lr", "1e-4", "--train-iters", str(args.iters), "--log-interval", "1",
                        "--eval-iters", "0", "--hidden-dropout", "0", "--attention-dropout", "0",
                        "--data-path", prefix + "_text_document", "--split", "100,0,0", "--metrics-file", metrics]
                       + tokenizer + shape + extra, check=True, capture_output=True)
        with open(metrics) as file:
            # The logged iterations (the header record carries the planner's prediction, not a time).
            records = [r for r in map(json.loads, file) if "iteration" in r and "ms_per_iter" in r]
        measured = statistics.median(r["ms_per_iter"] for r in records[2:])
        best = min(r["ms_per_iter"] for r in records[2:])
        time = predicted["iteration_time_s"] * 1000
        memory = (ranks * predicted["memory_per_device_bytes"] + predicted["process_bytes"]) / mib
        peak = records[-1]["peak_memory_bytes"] / mib
        errors.append(((time - measured) / measured, (time - best) / best, (memory - peak) / peak))
        print(f"| {name} | {ranks} | {time:.0f} | {measured:.0f} | {errors[-1][0] * 100:+.1f}% | "
              f"{best:.0f} | {errors[-1][1] * 100:+.1f}% | {memory:.0f} | {peak:.0f} | {errors[-1][2] * 100:+.1f}% |",
              flush=True)
    worst = [max(abs(e[i]) for e in errors) * 100 for i in range(3)]
    print(f"\nworst time error {worst[0]:.1f}% against the median, {worst[1]:.1f}% against the best iteration; "
          f"worst memory error {worst[2]:.1f}% over {len(errors)} runs")


if __name__ == "__main__":
    main()

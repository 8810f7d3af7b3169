#!/usr/bin/env python3
"""Predicted (`megatron plan --cluster local`) against measured (`megatron train`) activation memory
under tensor parallelism on rank threads, with and without sequence parallelism.

For the bench shapes M and 124M, trains 2 iterations with TP 2 (two rank threads of one process,
one core each) on the bundled corpus, with and without `--sequence-parallel` and with no,
selective and full recomputation, and prints rank 0's saved activations plus shared scratch as
the trainer counts them from its buffers (`activation_bytes + scratch_bytes` in the metrics file)
next to the planner's predicted activation memory per device, and the process's peak resident
memory next to the planner's total for the two ranks, with the relative errors. The peak also
holds what the prediction leaves out (the binary and its libraries, thread stacks, OpenBLAS's
buffers, the data pipeline's index).

    swift build -c release && python3 scripts/reference/plan_memory_vs_train.py [--configs M 124M]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

# The bench configurations and the JSON-reading runner are plan_memory_vs_bench.py's.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plan_memory_vs_bench import SHAPES, run as last_json  # noqa: E402


TOKENIZER = ["--vocab-file", "data/gpt2/gpt2-vocab.json", "--merge-file", "data/gpt2/gpt2-merges.txt"]


def bundled_corpus(binary):
    """Preprocesses the bundled corpus with the GPT-2 vocabulary into a temporary folder; returns
    that folder and the dataset prefix (without `_text_document`)."""
    work = tempfile.mkdtemp()
    prefix = os.path.join(work, "devil")
    subprocess.run([binary, "preprocess", "--input", "data/devils-dictionary/devils_dictionary.jsonl",
                    "--output-prefix", prefix, "--append-eod", "--workers", "2"] + TOKENIZER,
                   check=True, capture_output=True)
    return work, prefix


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=".build/release/megatron")
    parser.add_argument("--configs", nargs="+", default=["M", "124M"], choices=sorted(SHAPES))
    parser.add_argument("--recompute", nargs="+", default=["none", "selective", "full"])
    args = parser.parse_args()
    mib = 1 << 20
    work, prefix = bundled_corpus(args.binary)
    tokenizer = TOKENIZER
    print("| config | TP | SP | recompute | activations predicted MiB | measured MiB | error "
          "| total predicted MiB (2 ranks) | peak resident MiB | error | tokens/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.configs:
        layers, hidden, heads, seq, _, micro = SHAPES[name]
        shape = ["--num-layers", str(layers), "--hidden-size", str(hidden), "--num-attention-heads", str(heads),
                 "--seq-length", str(seq), "--micro-batch-size", str(micro), "--global-batch-size", str(micro),
                 "--tensor-model-parallel-size", "2"]
        for sequence_parallel in [False, True]:
            for recompute in args.recompute:
                flags = (["--sequence-parallel"] if sequence_parallel else []) \
                    + ([] if recompute == "none" else ["--recompute-granularity", recompute])
                plan = last_json([args.binary, "plan", "--cluster", "local", "--data-parallel-size", "1",
                                  "--vocab-size", "50257", "--json"] + shape + flags)
                metrics = os.path.join(work, f"{name}-{sequence_parallel}-{recompute}.jsonl")
                subprocess.run([args.binary, "train", "--lr", "1e-4", "--train-iters", "2", "--log-interval", "1",
                                "--eval-iters", "0", "--data-path", prefix + "_text_document", "--split", "100,0,0",
                                "--metrics-file", metrics] + tokenizer + shape + flags,
                               check=True, capture_output=True)
                with open(metrics) as file:
                    record = [json.loads(line) for line in file if "activation_bytes" in line][-1]
                measured = (record["activation_bytes"] + record["scratch_bytes"]) / mib
                predicted = plan["activation_bytes_per_device"] / mib
                total = 2 * plan["memory_per_device_bytes"] / mib
                peak = record["peak_memory_bytes"] / mib
                print(f"| {name} | 2 | {'yes' if sequence_parallel else 'no'} | {recompute} | {predicted:.0f} | "
                      f"{measured:.0f} | {(predicted - measured) / measured * 100:+.1f}% | {total:.0f} | {peak:.0f} | "
                      f"{(total - peak) / peak * 100:+.1f}% | {record['tokens_per_s']:.0f} |", flush=True)


if __name__ == "__main__":
    main()

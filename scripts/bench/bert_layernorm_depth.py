#!/usr/bin/env python3
"""The Megatron-LM paper's BERT finding in miniature: pre-LN (Megatron's rearrangement) against
post-LN (original BERT) as the model gets deeper, on the bundled corpus with the same learning
rate schedule. Prints a table of training and validation masked-LM losses per run.

    swift build -c release --product megatron
    python3 scripts/bench/bert_layernorm_depth.py [--depths 2 8 24] [--iters 150] [--lr 1e-3]

Uses the test WordPiece vocabulary (2,500 pieces; no real BERT vocabulary can be downloaded
here), the corpus split into sentences, hidden size 64, 4 heads, 64 tokens, 16 sequences a step.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

MEGATRON = ".build/release/megatron"
VOCAB = "Tests/DataTests/Fixtures/wordpiece/uncased/vocab.txt"
CORPUS = "data/devils-dictionary/devils_dictionary.jsonl"


def run(args, work, depth, order):
    metrics = os.path.join(work, f"metrics-{order}-{depth}.jsonl")
    command = [MEGATRON, "train", "--model-type", "bert", "--bert-layernorm-order", order,
               "--tokenizer-type", "BertWordPieceLowerCase", "--vocab-file", VOCAB,
               "--data-path", os.path.join(work, "corpus_text_sentence"), "--split", "949,50,1",
               "--num-layers", str(depth), "--hidden-size", "64", "--num-attention-heads", "4", "--seq-length", "64",
               "--micro-batch-size", "8", "--global-batch-size", "16", "--train-iters", str(args.iters),
               "--lr", str(args.lr), "--min-lr", str(args.lr / 10), "--lr-decay-style", "cosine",
               "--lr-warmup-iters", str(args.warmup), "--weight-decay", "0.01", "--clip-grad", "1.0",
               "--eval-interval", str(args.iters), "--eval-iters", "8", "--log-interval", "1", "--seed", "1234",
               "--metrics-file", metrics]
    result = subprocess.run(command, capture_output=True, text=True)
    records = [json.loads(line) for line in open(metrics)] if os.path.exists(metrics) else []
    train = [r["lm_loss"] for r in records if "lm_loss" in r]
    valid = [r["validation_loss"] for r in records if "validation_loss" in r]
    diverged = result.returncode != 0
    return train, valid, diverged, result.stderr.strip().splitlines()[-1:] if diverged else []


def mean(values):
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else float("nan")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--depths", type=int, nargs="+", default=[2, 8, 24])
    parser.add_argument("--iters", type=int, default=150)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="bert-depth-")
    subprocess.run([MEGATRON, "preprocess", "--input", CORPUS, "--output-prefix", os.path.join(work, "corpus"),
                    "--tokenizer-type", "BertWordPieceLowerCase", "--vocab-file", VOCAB, "--split-sentences"],
                   check=True, capture_output=True)
    print(f"lr {args.lr}, warmup {args.warmup}, cosine to lr/10 over {args.iters} iterations")
    print("| layers | order | lm loss, iterations 1-10 | 41-50 | last 10 | validation lm loss | note |")
    print("|---|---|---|---|---|---|---|")
    for depth in args.depths:
        for order in ["post", "pre"]:
            train, valid, diverged, error = run(args, work, depth, order)
            note = ("stopped: " + error[0]) if diverged else ""
            print(f"| {depth} | {order} | {mean(train[:10]):.3f} | {mean(train[40:50]):.3f} | {mean(train[-10:]):.3f} | "
                  f"{valid[-1] if valid else float('nan'):.3f} | {note} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""BERT training speed: `megatron train --model-type bert` against Hugging Face's
BertForPreTraining in PyTorch eager (fp32, the same threads), alternating in one run.

    swift build -c release --product megatron
    python3 scripts/reference/compare_bert_bench.py [--rounds 3] [--steps 8] [--layers 4 --hidden 256 --heads 4 --seq 128 --batch 8]

Ours trains on the bundled corpus (sentence-split, the test WordPiece vocabulary: its data
loading and masking are inside the timing); PyTorch on random ids of the same shape with 15% of
the positions as masked-LM targets and sentence-order labels. tokens/s = sequences x length /
step time; the median of the steps after the first two of each round, then the median of rounds.
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

import torch
from transformers import BertConfig, BertForPreTraining

MEGATRON = ".build/release/megatron"
VOCAB = "Tests/DataTests/Fixtures/wordpiece/uncased/vocab.txt"
CORPUS = "data/devils-dictionary/devils_dictionary.jsonl"


def ours(args, work, round_index):
    metrics = os.path.join(work, f"metrics-{round_index}.jsonl")
    subprocess.run([MEGATRON, "train", "--model-type", "bert", "--tokenizer-type", "BertWordPieceLowerCase",
                    "--vocab-file", VOCAB, "--data-path", os.path.join(work, "corpus_text_sentence"), "--split", "1000,0,0",
                    "--num-layers", str(args.layers), "--hidden-size", str(args.hidden), "--num-attention-heads", str(args.heads),
                    "--seq-length", str(args.seq), "--micro-batch-size", str(args.batch), "--global-batch-size", str(args.batch),
                    "--train-iters", str(args.steps), "--lr", "1e-4", "--eval-iters", "0", "--log-interval", "1",
                    "--metrics-file", metrics], check=True, capture_output=True)
    speeds = [r["tokens_per_s"] for r in map(json.loads, open(metrics)) if "tokens_per_s" in r]  # the iterations
    return statistics.median(speeds[2:])


def pytorch(args, vocab_size):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=vocab_size, hidden_size=args.hidden, num_hidden_layers=args.layers,
                        num_attention_heads=args.heads, intermediate_size=4 * args.hidden, max_position_embeddings=args.seq,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertForPreTraining(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    ids = torch.randint(5, vocab_size, (args.batch, args.seq))
    labels = torch.where(torch.rand(args.batch, args.seq) < 0.15, ids, torch.full_like(ids, -100))
    types = (torch.arange(args.seq)[None, :] >= args.seq // 2).long().expand(args.batch, -1)
    order = torch.randint(0, 2, (args.batch,))
    speeds = []
    for _ in range(args.steps):
        start = time.perf_counter()
        optimizer.zero_grad()
        loss = model(input_ids=ids, token_type_ids=types, labels=labels, next_sentence_label=order).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        speeds.append(args.batch * args.seq / (time.perf_counter() - start))
    return statistics.median(speeds[2:])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = tempfile.mkdtemp(prefix="bert-bench-")
    subprocess.run([MEGATRON, "preprocess", "--input", CORPUS, "--output-prefix", os.path.join(work, "corpus"),
                    "--tokenizer-type", "BertWordPieceLowerCase", "--vocab-file", VOCAB, "--split-sentences"],
                   check=True, capture_output=True)
    vocab_size = sum(1 for _ in open(VOCAB))
    results = {"megatron-swift": [], "PyTorch eager": []}
    for round_index in range(args.rounds):
        results["megatron-swift"].append(ours(args, work, round_index))
        results["PyTorch eager"].append(pytorch(args, vocab_size))
        print(f"round {round_index + 1}: megatron-swift {results['megatron-swift'][-1]:.0f} tokens/s, "
              f"PyTorch eager {results['PyTorch eager'][-1]:.0f} tokens/s", flush=True)
    print(f"BERT {args.layers} layers, hidden {args.hidden}, {args.heads} heads, seq {args.seq}, batch {args.batch}, "
          f"vocabulary {vocab_size}, {args.threads} threads, torch {torch.__version__}")
    for name, values in results.items():
        print(f"{name}: median {statistics.median(values):.0f} tokens/s over {len(values)} rounds")


if __name__ == "__main__":
    main()

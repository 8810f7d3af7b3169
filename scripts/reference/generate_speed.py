#!/usr/bin/env python3
"""Decoding speed and time to first token: `megatron generate` against transformers' `generate`
(KV cache, greedy) on the same GPT-2 124M checkpoint, alternating in one run.

megatron's figures are wall times of whole commands: time to first token is a 1-token
`generate` (start-up, loading, prompt, one token), throughput is 128 / (time of a 129-token run
- time of the 1-token run). transformers' are timed in-process after its model is loaded (its
load time is printed separately). Batch 8 runs 8 prompts: transformers in one padded batch,
megatron side by side (`generate` decodes up to --micro-batch-size, default 8, prompts together).

    python3 scripts/reference/generate_speed.py --hf DIR --checkpoint DIR [--rounds 2]
"""
import argparse
import os
import subprocess
import time

import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROMPTS = ["The Devil's Dictionary defines", "A lawyer is", "Politics is", "LOVE, n.", "In the beginning",
           "The cynic said", "War is", "Happiness is"]


def megatron(binary, checkpoint, prompts, tokens):
    start = time.perf_counter()
    subprocess.run([binary, "generate", "--load", checkpoint, "--vocab-file", os.path.join(ROOT, "data/gpt2/gpt2-vocab.json"),
                    "--merge-file", os.path.join(ROOT, "data/gpt2/gpt2-merges.txt"), "--tokens-to-generate", str(tokens),
                    "--temperature", "0"] + [arg for p in prompts for arg in ("--prompt", p)],
                   check=True, capture_output=True)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hf", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build/release/megatron"))
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count())
    start = time.perf_counter()
    model = GPT2LMHeadModel.from_pretrained(args.hf).eval()
    print(f"transformers: model loaded in {time.perf_counter() - start:.2f} s")
    bpe = ByteLevelBPETokenizer(os.path.join(ROOT, "data/gpt2/gpt2-vocab.json"), os.path.join(ROOT, "data/gpt2/gpt2-merges.txt"))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>")
    tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"

    def hf(prompts, tokens):
        batch = tokenizer(prompts, return_tensors="pt", padding=True)
        start = time.perf_counter()
        with torch.no_grad():
            model.generate(**batch, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False, use_cache=True,
                           pad_token_id=tokenizer.eos_token_id)
        return time.perf_counter() - start

    for round in range(args.rounds):
        for batch in (1, 8):
            prompts = PROMPTS[:batch]
            m1, m129 = megatron(args.binary, args.checkpoint, prompts, 1), megatron(args.binary, args.checkpoint, prompts, 129)
            h1, h129 = hf(prompts, 1), hf(prompts, 129)
            ours = 128 * batch / (m129 - m1)
            theirs = 128 * batch / (h129 - h1)
            print(f"round {round + 1}, batch {batch}: megatron {ours:.1f} tok/s, first token {m1:.2f} s (whole command); "
                  f"transformers {theirs:.1f} tok/s, first token {h1:.2f} s (model loaded); ratio {ours / theirs:.2f}",
                  flush=True)


if __name__ == "__main__":
    main()

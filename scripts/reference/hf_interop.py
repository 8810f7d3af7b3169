#!/usr/bin/env python3
"""Hugging Face GPT-2 interop reference for `megatron convert`.

  generate DIR   writes DIR/hf (a randomly initialised GPT2LMHeadModel of odd sizes, saved with
                 save_pretrained) and DIR/reference.safetensors (token ids and the model's logits)
                 for the Swift tests, and the same for a model with the exact erf GELU
                 (activation_function "gelu") and an untied lm_head (tie_word_embeddings False):
                 DIR/hf-gelu-untied and DIR/reference-gelu-untied.safetensors.
  check          round-trips a fresh random model through `megatron convert` (hf -> checkpoint ->
                 hf) and checks that transformers loads the result with identical logits.

Needs torch, transformers and safetensors (pip); no download.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel


def random_model(seed, activation="gelu_new", tied=True):
    torch.manual_seed(seed)
    config = GPT2Config(n_layer=3, n_embd=72, n_head=3, n_positions=40, vocab_size=301,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, activation_function=activation,
                        tie_word_embeddings=tied)
    config._attn_implementation = "eager"
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # LayerNorms away from 1/0 and larger weights, so every tensor matters
        for name, parameter in model.named_parameters():
            if "ln" in name:
                parameter.add_(0.1 * torch.randn_like(parameter))
            elif parameter.dim() > 1:
                parameter.mul_(5.0)
    return model


TOKENS = [5, 300, 17, 42, 0, 299, 128, 64, 7, 7, 7, 150, 33, 250, 1, 2, 3, 200, 100]


def logits(model):
    with torch.no_grad():
        return model(torch.tensor([TOKENS])).logits[0]


def generate(directory):
    for name, model in [("", random_model(1)), ("-gelu-untied", random_model(3, activation="gelu", tied=False))]:
        model.save_pretrained(os.path.join(directory, "hf" + name), safe_serialization=True)
        save_file({"tokens": torch.tensor(TOKENS, dtype=torch.int32), "logits": logits(model).float().contiguous()},
                  os.path.join(directory, f"reference{name}.safetensors"))
        print(f"wrote {directory}/hf{name} and {directory}/reference{name}.safetensors")


def check(binary):
    model = random_model(2)
    with tempfile.TemporaryDirectory() as work:
        model.save_pretrained(os.path.join(work, "hf"), safe_serialization=True)
        subprocess.run([binary, "convert", "--input-format", "hf", "--input", os.path.join(work, "hf"),
                        "--output", os.path.join(work, "ckpt")], check=True)
        subprocess.run([binary, "convert", "--output-format", "hf", "--input", os.path.join(work, "ckpt"),
                        "--output", os.path.join(work, "back")], check=True)
        back = GPT2LMHeadModel.from_pretrained(os.path.join(work, "back"), attn_implementation="eager").eval()
        difference = (logits(model) - logits(back)).abs().max().item()
        print(f"round trip through megatron-swift: max |logit difference| = {difference:.3g}")
        if difference != 0.0:
            sys.exit("logits differ")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["generate", "check"])
    parser.add_argument("directory", nargs="?", default="Tests/TrainingTests/Fixtures")
    parser.add_argument("--binary", default=".build/release/megatron")
    args = parser.parse_args()
    generate(args.directory) if args.mode == "generate" else check(args.binary)

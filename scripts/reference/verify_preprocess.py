#!/usr/bin/env python3
"""Cross-check `megatron preprocess` output with the Python reference tools.

Reads PREFIX.bin/.idx with megatron-core's IndexedDataset and compares every document with the
ids that Hugging Face `tokenizers` gives for the same JSONL line (plus <|endoftext|> when
--append-eod was used). Exits non-zero on the first mismatch.

    megatron preprocess --input corpus.jsonl --output-prefix out \
        --vocab-file data/gpt2/gpt2-vocab.json --merge-file data/gpt2/gpt2-merges.txt --append-eod
    python3 scripts/reference/verify_preprocess.py --input corpus.jsonl \
        --prefix out_text_document --vocab data/gpt2/gpt2-vocab.json \
        --merges data/gpt2/gpt2-merges.txt --append-eod

Needs: pip install megatron-core tokenizers numpy
"""
import argparse
import json
import sys

import numpy
from megatron.core.datasets.indexed_dataset import IndexedDataset
from tokenizers import Tokenizer, decoders, models, pre_tokenizers


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--vocab", required=True)
    parser.add_argument("--merges", required=True)
    parser.add_argument("--json-key", default="text")
    parser.add_argument("--append-eod", action="store_true")
    args = parser.parse_args()

    tokenizer = Tokenizer(models.BPE.from_file(args.vocab, args.merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    eod = tokenizer.token_to_id("<|endoftext|>")
    dataset = IndexedDataset(args.prefix)
    with open(args.input, encoding="utf-8") as f:
        texts = [json.loads(line)[args.json_key] for line in f if line.strip()]
    documents = dataset.document_indices
    if len(documents) - 1 != len(texts):
        sys.exit(f"{len(documents) - 1} documents in {args.prefix}, {len(texts)} lines in {args.input}")
    tokens = 0
    for number, text in enumerate(texts):
        expected = tokenizer.encode(text).ids
        if args.append_eod and expected:
            expected.append(eod)
        got = []
        for sequence in range(documents[number], documents[number + 1]):
            got.extend(numpy.asarray(dataset[sequence]).tolist())
        if got != expected:
            sys.exit(f"document {number}: megatron-core reads {got[:20]}..., tokenizers gives {expected[:20]}...")
        tokens += len(got)
    print(f"ok: megatron-core reads {len(texts)} documents, {tokens} tokens, dtype {dataset.index.dtype.__name__}, "
          "identical to Hugging Face tokenizers")


if __name__ == "__main__":
    main()

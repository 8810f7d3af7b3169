#!/usr/bin/env python3
"""Fixture for megatron-core's BERT sample mapping (Tests/DataTests/Fixtures/bert/sample_index.json).

Random documents of 0-12 sentences of 1-600 tokens (empty, one-sentence and long-sentence
documents included) and the mapping megatron-core 0.16.1's compiled `helpers.build_mapping` makes
of them for several settings (what `MaskedWordPieceDataset._build_sample_index` calls).

    python3 scripts/reference/bert_sample_index_fixture.py
"""
import json
import os

import numpy
from megatron.core.datasets import helpers

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "DataTests", "Fixtures", "bert", "sample_index.json")

SETTINGS = [  # epochs, max samples, max sequence length, short-sequence probability, seed, min sentences
    (1, 2**63, 125, 0.1, 1234, 2),
    (1, 2**63, 61, 0.0, 7, 1),
    (2**31 - 2, 1500, 253, 0.25, 99, 2),
    (3, 2**63, 509, 0.1, 5, 1),
]


def main():
    rng = numpy.random.RandomState(42)
    counts = rng.randint(0, 13, size=300)
    lengths = rng.randint(1, 120, size=int(counts.sum())).astype(numpy.int32)
    long = rng.rand(lengths.size) < 0.01
    lengths[long] = rng.randint(513, 601, size=int(long.sum()))
    documents = numpy.concatenate([[0], numpy.cumsum(counts)]).astype(numpy.int64)
    cases = []
    for epochs, max_samples, length, probability, seed, minimum in SETTINGS:
        mapping = helpers.build_mapping(documents, lengths, epochs, max_samples, length, probability, seed, False, minimum)
        cases.append({"epochs": epochs, "max_samples": max_samples, "max_sequence_length": length,
                      "short_sequence_probability": probability, "seed": seed, "min_sentences": minimum,
                      "mapping": numpy.asarray(mapping).astype(numpy.int64).reshape(-1).tolist()})
        print(f"seed {seed}: {len(mapping)} samples")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"document_indices": documents.tolist(), "sentence_lengths": lengths.tolist(), "cases": cases}, f)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Fixture for megatron-core's BERT samples (Tests/DataTests/Fixtures/bert/samples.json).

The first 120 entries of the bundled corpus, cut into sentences at ". " and tokenized with
Google BERT's FullTokenizer (as Megatron's BertWordPieceLowerCase) over the uncased WordPiece
fixture vocabulary; megatron-core 0.16.1's `helpers.build_mapping` for the sample index and its
`BERTMaskedWordPieceDataset.__getitem__` (with `_create_masked_lm_predictions`) for the first
samples under three masking settings. The dataset object is made without its builder: only the
attributes `__getitem__` reads are set.

    pip download --no-deps -d /tmp/bert bert-tensorflow==1.0.4 && unzip -o /tmp/bert/*.whl -d /tmp/bert
    python3 scripts/reference/bert_sample_fixture.py /tmp/bert
"""
import json
import os
import re
import sys
import types

import numpy
from megatron.core.datasets import helpers
from megatron.core.datasets.bert_dataset import BERTMaskedWordPieceDataset

sys.path.insert(0, os.path.dirname(__file__))
from wordpiece_fixtures import google_tokenization  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
OUT = os.path.join(ROOT, "Tests", "DataTests", "Fixtures", "bert", "samples.json")
VOCAB = os.path.join(ROOT, "Tests", "DataTests", "Fixtures", "wordpiece", "uncased", "vocab.txt")
CORPUS = os.path.join(ROOT, "data", "devils-dictionary", "devils_dictionary.jsonl")

SETTINGS = [  # sequence length, seed, classification head, max n-gram, whole words, longer n-grams
    (128, 1234, True, 3, True, False),
    (64, 7, False, 1, False, False),
    (96, 99, True, 3, False, True),
]


def main():
    google = google_tokenization(sys.argv[1] if len(sys.argv) > 1 else "/tmp/bert")
    tokenizer = google.FullTokenizer(VOCAB, do_lower_case=True)
    texts = [json.loads(line)["text"] for line in open(CORPUS)][:120]
    documents = []
    for text in texts:
        sentences = [s for s in re.split(r"(?<=\.) ", text) if s.strip()]
        documents.append([tokenizer.convert_tokens_to_ids(tokenizer.tokenize(s)) for s in sentences])
    sentences = [numpy.array(s, dtype=numpy.int32) for d in documents for s in d]
    bounds = numpy.concatenate([[0], numpy.cumsum([len(d) for d in documents])]).astype(numpy.int64)
    lengths = numpy.array([len(s) for s in sentences], dtype=numpy.int32)
    inv_vocab = {v: k for k, v in tokenizer.vocab.items()}
    bert = types.SimpleNamespace(cls=tokenizer.vocab["[CLS]"], sep=tokenizer.vocab["[SEP]"], mask=tokenizer.vocab["[MASK]"],
                                 pad=tokenizer.vocab["[PAD]"], inv_vocab=inv_vocab)
    cases = []
    for length, seed, head, ngram, whole, longer in SETTINGS:
        mapping = helpers.build_mapping(bounds, lengths, 1, 2**63, length - 3, 0.1, seed, False, 2 if head else 1)
        dataset = BERTMaskedWordPieceDataset.__new__(BERTMaskedWordPieceDataset)
        dataset.config = types.SimpleNamespace(
            tokenizer=bert, random_seed=seed, sequence_length=length, classification_head=head, masking_probability=0.15,
            masking_max_ngram=ngram, masking_do_full_word=whole, masking_do_permutation=False,
            masking_use_longer_ngrams=longer, masking_use_geometric_distribution=False)
        dataset.dataset = sentences
        dataset.sample_index = mapping
        dataset.token_lookup = list(inv_vocab.keys())
        dataset._pad_token_id = bert.pad
        samples = []
        for index in range(min(40, len(mapping))):
            item = dataset[index]
            samples.append({key: (value.tolist() if hasattr(value, "tolist") else value) for key, value in item.items()})
        cases.append({"sequence_length": length, "seed": seed, "classification_head": head, "max_ngram": ngram,
                      "whole_word": whole, "longer_ngrams": longer,
                      "mapping": numpy.asarray(mapping).astype(numpy.int64).reshape(-1).tolist(), "samples": samples})
        print(f"seed {seed}: {len(mapping)} samples, {sum(s['truncated'] for s in samples)} of 40 truncated, "
              f"{sum(sum(s['loss_mask']) for s in samples)} masked tokens")
    with open(OUT, "w") as f:
        json.dump({"document_indices": bounds.tolist(), "sentences": [s.tolist() for s in sentences], "cases": cases}, f)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Fixture for Megatron's per-split blends (`--train-data-path`, `--valid-data-path`): megatron-core's
BlendedMegatronDatasetBuilder with `blend_per_split` over the two GPT fixture datasets
(Tests/DataTests/Fixtures/megatron_core/gpt_docs and gpt_docs_b, written by
indexed_dataset_fixtures.py): train = 0.3 gpt_docs + 0.7 gpt_docs_b, valid = gpt_docs_b alone,
each dataset used whole. Writes per_split_blend.json there: per split the blend's dataset index,
dataset sample index, per-dataset lengths and the first samples' tokens.

    pip install megatron-core==0.16.1 torch numpy
    python3 scripts/reference/per_split_blend_fixture.py
"""
import json
import os
import shutil
import tempfile
from collections import OrderedDict

import numpy
import torch.distributed as dist

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests/DataTests/Fixtures/megatron_core")


class FixtureTokenizer:
    """Just enough tokenizer for GPTDatasetConfig."""

    def __init__(self, eod, vocab_size):
        self.eod = eod
        self.vocab_size = vocab_size
        self.unique_identifiers = OrderedDict([("class", "FixtureTokenizer"), ("eod", eod), ("vocab_size", vocab_size)])


def main():
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29541")
    dist.init_process_group("gloo", rank=0, world_size=1)
    from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
    from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig

    cache = tempfile.mkdtemp()
    os.chdir(OUT)  # bare prefixes, as the other fixtures
    config = GPTDatasetConfig(
        random_seed=1234, sequence_length=16, blend_per_split=[(["gpt_docs", "gpt_docs_b"], [0.3, 0.7]), (["gpt_docs_b"], None), None],
        path_to_cache=cache, tokenizer=FixtureTokenizer(999, 1000), reset_position_ids=False, reset_attention_mask=False,
        eod_mask_loss=False, create_attention_mask=False)
    sizes = [40, 8, None]
    built = BlendedMegatronDatasetBuilder(GPTDataset, sizes, lambda: True, config).build()
    record = OrderedDict(random_seed=1234, sequence_length=16, sizes=[40, 8, None],
                         train=OrderedDict(prefixes=["gpt_docs", "gpt_docs_b"], raw_weights=[0.3, 0.7]),
                         valid=OrderedDict(prefixes=["gpt_docs_b"]), splits=[])
    for i, dataset in enumerate(built[:2]):
        if hasattr(dataset, "datasets"):  # a blend
            entry = OrderedDict(kind="blend", dataset_index=dataset.dataset_index.tolist(),
                                dataset_sample_index=dataset.dataset_sample_index.tolist(),
                                per_dataset_len=[len(d) for d in dataset.datasets])
        else:
            entry = OrderedDict(kind="dataset", length=len(dataset), document_count=len(dataset.indices),
                                shuffle_index=dataset.shuffle_index.tolist())
        entry["first_samples"] = [dataset[j]["tokens"].tolist() for j in range(min(3, len(dataset)))]
        record["splits"].append(entry)
    with open(os.path.join(OUT, "per_split_blend.json"), "w") as file:
        json.dump(record, file)
    print({k: (v["kind"], len(v["first_samples"])) for k, v in zip(["train", "valid"], record["splits"])})
    dist.destroy_process_group()
    shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()

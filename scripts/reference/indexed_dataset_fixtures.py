#!/usr/bin/env python3
"""Megatron-core reference fixtures for the indexed dataset (.bin/.idx), GPTDataset indices and blends.

Two modes:

    generate [--out DIR]
        Writes, with megatron-core itself (pip install megatron-core; 0.16.1 was used), into
        DIR (default Tests/DataTests/Fixtures/megatron_core):
          small_uint16.bin/.idx, small_int32.bin/.idx   IndexedDatasetBuilder outputs
          small_expected.json                           what a reader must find in them
          gpt_docs.bin/.idx, gpt_docs_b.bin/.idx        40 / 24 random documents (uint16, EOD-terminated)
          gpt_indices.json                              GPTDataset document/sample/shuffle indices + samples
          blend_indices.json                            blending indices and per-dataset sample counts
        Every index that megatron-core produces is also recomputed by the plain-Python
        re-implementation below (MT19937 + numpy legacy shuffle, build_sample_idx, blending) and the
        two are asserted equal, so this file doubles as an executable spec.

    verify PREFIX EXPECTED_JSON [--entry NAME]
        Reads PREFIX.bin/.idx (written by any tool) with megatron-core's IndexedDataset and checks it
        against EXPECTED_JSON. The JSON is either one entry
            {"dtype": "uint16", "sequence_lengths": [...], "document_indices": [0, ...],
             "tokens": [[...], ...]  (per sequence; a flat list is accepted too),
             optional "dtype_code", "sequence_pointers"}
        or a file like small_expected.json ({"files": {NAME: entry, ...}}), in which case the entry
        is --entry NAME or the basename of PREFIX. Exits 1 listing the mismatches.

Regenerate (needs torch, numpy, megatron-core; CI does not):
    python3 scripts/reference/indexed_dataset_fixtures.py generate
    python3 scripts/reference/indexed_dataset_fixtures.py verify \
        Tests/DataTests/Fixtures/megatron_core/small_uint16 Tests/DataTests/Fixtures/megatron_core/small_expected.json
"""
import argparse
import hashlib
import json
import math
import os
import shutil
import struct
import sys
import tempfile
import warnings
from collections import OrderedDict

import numpy

warnings.filterwarnings("ignore")
import logging  # noqa: E402

logging.disable(logging.WARNING)

DEFAULT_OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "DataTests", "Fixtures", "megatron_core"
)
HEADER = b"MMIDIDX\x00\x00"
DTYPE_CODES = {"uint8": 1, "int8": 2, "int16": 3, "int32": 4, "int64": 5, "float64": 6, "float32": 7, "uint16": 8}
DTYPE_NAMES = {v: k for k, v in DTYPE_CODES.items()}
SPLIT_NAMES = ["train", "valid", "test"]


# ----------------------------------------------------------------------------------------------
# Plain re-implementation (the spec, executable). No megatron, no numpy RNG.
# ----------------------------------------------------------------------------------------------
class MT19937:
    """numpy.random.RandomState(seed: int) bit stream: init_genrand(seed), standard tempering."""

    def __init__(self, seed):
        assert 0 <= seed <= 0xFFFFFFFF
        self.mt = [0] * 624
        self.mt[0] = seed
        for i in range(1, 624):
            prev = self.mt[i - 1]
            self.mt[i] = (1812433253 * (prev ^ (prev >> 30)) + i) & 0xFFFFFFFF
        self.pos = 624

    def _twist(self):
        mt = self.mt
        for i in range(624):
            y = (mt[i] & 0x80000000) | (mt[(i + 1) % 624] & 0x7FFFFFFF)
            v = mt[(i + 397) % 624] ^ (y >> 1)
            if y & 1:
                v ^= 0x9908B0DF
            mt[i] = v
        self.pos = 0

    def next32(self):
        if self.pos == 624:
            self._twist()
        y = self.mt[self.pos]
        self.pos += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C5680
        y ^= (y << 15) & 0xEFC60000
        y ^= y >> 18
        return y

    def next64(self):
        hi = self.next32()
        return (hi << 32) | self.next32()

    def interval(self, max_value):
        """numpy random_interval: masked rejection sampling in [0, max_value]."""
        if max_value == 0:
            return 0
        mask = max_value
        for s in (1, 2, 4, 8, 16, 32):
            mask |= mask >> s
        draw = self.next32 if max_value <= 0xFFFFFFFF else self.next64
        while True:
            v = draw() & mask
            if v <= max_value:
                return v

    def shuffle(self, a):
        """RandomState.shuffle on a 1-D array (Fisher-Yates from the end)."""
        for i in range(len(a) - 1, 0, -1):
            j = self.interval(i)
            a[i], a[j] = a[j], a[i]


def ref_split_ranges(split_matrix, num_elements):
    ranges = []
    for bookends in split_matrix:
        if bookends is None:
            ranges.append(None)
        else:  # Python round(): half to even
            ranges.append([int(round(bookends[0] * float(num_elements))), int(round(bookends[1] * float(num_elements)))])
    return ranges


def ref_build_sample_idx(sizes, doc_idx, seq_len, num_epochs, tokens_per_epoch, drop_last, extra):
    total = num_epochs * tokens_per_epoch - extra
    if drop_last:  # C++ int64 division truncates toward zero
        num_samples = total // seq_len if total >= 0 else -((-total) // seq_len)
    else:  # ceil(float(total) / seq_length) with a 32-bit C float
        num_samples = int(math.ceil(float(numpy.float32(total) / numpy.float32(seq_len))))
    out = [[0, 0]]
    d, off = 0, 0
    while len(out) <= num_samples:
        remaining = seq_len + extra
        while remaining != 0:
            doc_len = sizes[doc_idx[d]] - off
            remaining -= doc_len
            if remaining <= 0:
                off += remaining + doc_len - extra
                remaining = 0
            else:
                if d == len(doc_idx) - 1:
                    assert len(out) == num_samples
                    off = sizes[doc_idx[d]] - extra
                    break
                d += 1
                off = 0
        out.append([d, off])
    return out


def ref_gpt_indices(sizes, indices, num_samples, seq_len, seed, extra, drop_last):
    tokens_per_epoch = sum(sizes[i] for i in indices)
    num_epochs = 1
    if num_samples is not None:
        requested = num_samples * seq_len + extra
        total = tokens_per_epoch
        while total < requested:
            num_epochs += 1
            total += tokens_per_epoch
    separate = False
    sans_final = None
    if num_epochs > 1:
        sans_final = ((num_epochs - 1) * tokens_per_epoch - extra) // seq_len
        from_final = num_samples - sans_final
        per_epoch = (tokens_per_epoch - extra) // seq_len
        separate = from_final < int(0.80 * per_epoch)
    rng = MT19937(seed)
    if not separate:
        doc_index = list(indices) * num_epochs
        rng.shuffle(doc_index)
    else:
        first = list(indices) * (num_epochs - 1)
        rng.shuffle(first)
        last = list(indices)
        rng.shuffle(last)
        doc_index = first + last
    sample_index = ref_build_sample_idx(sizes, doc_index, seq_len, num_epochs, tokens_per_epoch, drop_last, extra)
    total_samples = len(sample_index) - 1
    first_n = sans_final if separate else total_samples
    shuffle_index = list(range(first_n))
    rng.shuffle(shuffle_index)
    if first_n != total_samples:
        tail = list(range(first_n, total_samples))
        rng.shuffle(tail)
        shuffle_index += tail
    return dict(
        num_tokens_per_epoch=tokens_per_epoch,
        num_epochs=num_epochs,
        separate_final_epoch=separate,
        num_samples_sans_final_epoch=sans_final,
        document_index=doc_index,
        sample_index=sample_index,
        shuffle_index=shuffle_index,
    )


def ref_sample(seqs, doc_index, sample_index, shuffle_index, i, seq_len, extra, pad, eod, eod_mask_loss,
               reset_position_ids):
    """dataset[i]: tokens/labels/loss_mask/position_ids (seqs: list of token lists per sequence)."""
    j = shuffle_index[i]
    (d0, o0), (d1, o1) = sample_index[j], sample_index[j + 1]
    if d0 == d1:
        text = seqs[doc_index[d0]][o0:o1 + extra]
    else:
        text = list(seqs[doc_index[d0]][o0:])
        for d in range(d0 + 1, d1):
            text += seqs[doc_index[d]]
        text += seqs[doc_index[d1]][:o1 + extra]
    text = list(text) + [pad] * (seq_len + extra - len(text))
    if extra:
        tokens, labels = text[:-1], text[1:]
    else:
        tokens, labels = text, text[1:] + [pad]
    loss_mask = [0 if (eod_mask_loss and t == eod) else 1 for t in tokens]
    position_ids = list(range(seq_len))
    if reset_position_ids:
        start = 0
        for p, t in enumerate(tokens):
            position_ids[p] = p - start
            if t == eod:
                start = p + 1
    loss_mask = [0 if l == pad else m for m, l in zip(loss_mask, labels)]
    tokens = [0 if t == pad else t for t in tokens]
    labels = [0 if l == pad else l for l in labels]
    return tokens, labels, loss_mask, position_ids


def ref_blending_indices(weights, size):
    counts = [0] * len(weights)
    dataset_index, dataset_sample_index = [], []
    for i in range(size):
        s = max(float(i), 1.0)
        best, best_err = 0, weights[0] * s - counts[0]
        for d in range(1, len(weights)):
            err = weights[d] * s - counts[d]
            if err > best_err:
                best, best_err = d, err
        dataset_index.append(best)
        dataset_sample_index.append(counts[best])
        counts[best] += 1
    return dataset_index, dataset_sample_index


def ref_exhaustive_blending_indices(sizes):
    total = sum(sizes)
    weights = [s / float(total) for s in sizes]
    counts = [0] * len(sizes)
    unspent = [d for d in range(len(sizes))]
    dataset_index, dataset_sample_index = [], []
    i = 0
    while unspent:
        s = max(float(i), 1.0)
        best, best_err = -1, -sys.float_info.max
        for d in unspent:  # ascending order (std::set)
            err = weights[d] * s - counts[d]
            if err > best_err:
                best, best_err = d, err
        dataset_index.append(best)
        dataset_sample_index.append(counts[best])
        counts[best] += 1
        if counts[best] == sizes[best]:
            unspent.remove(best)
        i += 1
    return dataset_index, dataset_sample_index


def ref_sizes_per_dataset(normalized_weights, target_sizes, surplus):
    return [
        [None if t is None else int(math.ceil(math.ceil(t * w) * (1 + surplus))) for t in target_sizes]
        for w in normalized_weights
    ]


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------
class FixtureTokenizer:
    """Just enough tokenizer for GPTDatasetConfig: eod, vocab_size, unique_identifiers (no pad)."""

    def __init__(self, eod, vocab_size):
        self.eod = eod
        self.vocab_size = vocab_size
        self.unique_identifiers = OrderedDict([("class", "FixtureTokenizer"), ("eod", eod), ("vocab_size", vocab_size)])


def to_list(a):
    return numpy.asarray(a).tolist()


def compact_json(obj, indent=1):
    """JSON with every list of scalars on one line."""

    def enc(o, level):
        pad = " " * (indent * level)
        inner = " " * (indent * (level + 1))
        if isinstance(o, dict):
            if not o:
                return "{}"
            items = [f"{inner}{json.dumps(str(k))}: {enc(v, level + 1)}" for k, v in o.items()]
            return "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(o, (list, tuple)):
            if all(not isinstance(x, (dict, list, tuple)) for x in o):
                return "[" + ",".join(json.dumps(x) for x in o) + "]"
            if all(isinstance(x, (list, tuple)) and all(not isinstance(y, (dict, list, tuple)) for y in x) for x in o) \
                    and sum(len(x) for x in o) <= 400:
                return "[" + ",".join(enc(x, level + 1) for x in o) + "]"
            return "[\n" + ",\n".join(inner + enc(x, level + 1) for x in o) + "\n" + pad + "]"
        return json.dumps(o)

    return enc(obj, 0) + "\n"


def write_json(path, obj):
    with open(path, "w") as f:
        f.write(compact_json(obj))


def read_idx_raw(idx_path):
    """Independent parse of the .idx file (no megatron)."""
    with open(idx_path, "rb") as f:
        data = f.read()
    assert data[:9] == HEADER, "bad magic"
    version = struct.unpack_from("<Q", data, 9)[0]
    code = data[17]
    seq_count, doc_count = struct.unpack_from("<QQ", data, 18)
    off = 34
    lengths = numpy.frombuffer(data, numpy.int32, seq_count, off)
    off += 4 * seq_count
    pointers = numpy.frombuffer(data, numpy.int64, seq_count, off)
    off += 8 * seq_count
    docs = numpy.frombuffer(data, numpy.int64, doc_count, off)
    off += 8 * doc_count
    return dict(version=version, code=code, lengths=lengths, pointers=pointers, docs=docs, end=off, size=len(data))


# ----------------------------------------------------------------------------------------------
# generate
# ----------------------------------------------------------------------------------------------
def build_small(out, name, dtype, plan):
    """plan: list of documents; a document is ('items', [seq, ...]) via add_item+end_document,
    or ('document', tokens, lengths) via add_document."""
    import torch
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    prefix = os.path.join(out, name)
    builder = IndexedDatasetBuilder(prefix + ".bin", dtype=dtype)
    sequences, doc_indices = [], [0]
    for doc in plan:
        if doc[0] == "items":
            for seq in doc[1]:
                builder.add_item(torch.tensor(seq, dtype=torch.int64))
                sequences.append(list(seq))
            builder.end_document()
        else:
            _, tokens, lengths = doc
            builder.add_document(tokens, lengths)
            pos = 0
            for n in lengths:
                sequences.append(list(tokens[pos:pos + n]))
                pos += n
        doc_indices.append(len(sequences))
    builder.finalize(prefix + ".idx")
    itemsize = numpy.dtype(dtype).itemsize
    pointers = [0]
    for s in sequences[:-1]:
        pointers.append(pointers[-1] + len(s) * itemsize)
    entry = OrderedDict(
        dtype=numpy.dtype(dtype).name,
        dtype_code=DTYPE_CODES[numpy.dtype(dtype).name],
        num_sequences=len(sequences),
        num_documents=len(doc_indices) - 1,
        sequence_lengths=[len(s) for s in sequences],
        sequence_pointers=pointers if sequences else [],
        document_indices=doc_indices,
        bin_bytes=sum(len(s) for s in sequences) * itemsize,
        idx_bytes=34 + 12 * len(sequences) + 8 * len(doc_indices),
        tokens=sequences,
    )
    return prefix, entry


def write_gpt_docs(out, name, seed, count, eod, vocab):
    """count EOD-terminated documents of random length 1..60 (one sequence each), uint16."""
    import torch
    from megatron.core.datasets.indexed_dataset import DType, IndexedDatasetBuilder

    rs = numpy.random.RandomState(seed)
    lengths = rs.randint(1, 61, size=count)
    lengths[3] = 1  # make sure a lone-EOD document exists
    prefix = os.path.join(out, name)
    builder = IndexedDatasetBuilder(prefix + ".bin", dtype=DType.optimal_dtype(vocab))
    for n in lengths:
        doc = list(rs.randint(1, eod, size=int(n) - 1)) + [eod]  # like --append-eod
        builder.add_document(torch.tensor(doc, dtype=torch.int64), [int(n)])
    builder.finalize(prefix + ".idx")
    return prefix


def dump_gpt_dataset(ds, cache_dir, n_samples, with_description):
    cfg = ds.config
    rec = OrderedDict()
    rec["split"] = ds.index_split.name
    rec["indices_range"] = [int(ds.indices[0]), int(ds.indices[-1]) + 1] if len(ds.indices) else [0, 0]
    rec["num_samples"] = ds.num_samples
    extra = int(cfg.add_extra_token_to_sequence)
    drop_last = True if ds.index_split.name != "valid" else cfg.drop_last_partial_validation_sequence
    rec["drop_last_partial_sequence"] = drop_last
    sizes = ds.dataset.sequence_lengths.tolist()
    ref = ref_gpt_indices(sizes, ds.indices.tolist(), ds.num_samples, cfg.sequence_length, cfg.random_seed, extra,
                          drop_last)
    rec["num_tokens_per_epoch"] = ds._get_num_tokens_per_epoch()
    rec["num_epochs"] = ds._get_num_epochs(rec["num_tokens_per_epoch"])
    assert rec["num_tokens_per_epoch"] == ref["num_tokens_per_epoch"] and rec["num_epochs"] == ref["num_epochs"]
    rec["separate_final_epoch"] = ref["separate_final_epoch"]
    rec["num_samples_sans_final_epoch"] = ref["num_samples_sans_final_epoch"]
    rec["len"] = len(ds)
    rec["document_index_dtype"] = ds.document_index.dtype.name
    rec["sample_index_dtype"] = ds.sample_index.dtype.name
    rec["shuffle_index_dtype"] = ds.shuffle_index.dtype.name
    rec["document_index"] = to_list(ds.document_index)
    rec["sample_index"] = to_list(ds.sample_index)
    rec["shuffle_index"] = to_list(ds.shuffle_index)
    for key in ("document_index", "sample_index", "shuffle_index"):
        assert rec[key] == ref[key], f"re-implementation differs from megatron-core in {key}"
    if with_description:
        rec["unique_description"] = ds.unique_description
    rec["unique_description_md5"] = ds.unique_description_hash
    assert hashlib.md5(ds.unique_description.encode()).hexdigest() == ds.unique_description_hash
    if with_description:
        rec["cache_files"] = sorted(f for f in os.listdir(cache_dir) if f.startswith(ds.unique_description_hash))
    # dataset positions 0..n_samples-1, plus the position whose raw sample is the last one (end of data)
    picks = list(range(min(n_samples, len(ds))))
    if len(ds) and n_samples:
        last = int(numpy.nonzero(ds.shuffle_index == len(ds) - 1)[0][0])
        if last not in picks:
            picks.append(last)
    raw = read_idx_raw(ds.dataset.path_prefix + ".idx")
    token_dtype = numpy.dtype(DTYPE_NAMES[raw["code"]])
    flat = numpy.fromfile(ds.dataset.path_prefix + ".bin", dtype=token_dtype).tolist()
    seqs = [flat[p // token_dtype.itemsize:p // token_dtype.itemsize + n]
            for p, n in zip(raw["pointers"].tolist(), raw["lengths"].tolist())]
    samples = []
    for i in picks:
        item = ds[i]
        got = (to_list(item["tokens"]), to_list(item["labels"]), [int(x) for x in to_list(item["loss_mask"])],
               to_list(item["position_ids"]))
        want = ref_sample(seqs, rec["document_index"], rec["sample_index"], rec["shuffle_index"], i,
                          cfg.sequence_length, extra, ds._pad_token_id, cfg.tokenizer.eod, cfg.eod_mask_loss,
                          cfg.reset_position_ids)
        assert got == tuple(want), (i, got, want)
        sample = OrderedDict(index=i, raw_sample=int(ds.shuffle_index[i]),
                             tokens=to_list(item["tokens"]), labels=to_list(item["labels"]),
                             loss_mask=[int(x) for x in to_list(item["loss_mask"])])
        if cfg.reset_position_ids:
            sample["position_ids"] = to_list(item["position_ids"])
        samples.append(sample)
    rec["samples"] = samples
    return rec


def gpt_case(name, prefix, cache_dir, seed, seq_len, split, sizes, tokenizer, with_description=False, eval_samples=True,
             **flags):
    from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
    from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig

    config = GPTDatasetConfig(
        random_seed=seed,
        sequence_length=seq_len,
        blend=([prefix], None),
        split=split,
        path_to_cache=cache_dir,
        tokenizer=tokenizer,
        reset_position_ids=flags.get("reset_position_ids", False),
        reset_attention_mask=flags.get("reset_attention_mask", False),
        eod_mask_loss=flags.get("eod_mask_loss", False),
        create_attention_mask=False,
        add_extra_token_to_sequence=flags.get("add_extra_token_to_sequence", True),
        drop_last_partial_validation_sequence=flags.get("drop_last_partial_validation_sequence", True),
    )
    datasets = BlendedMegatronDatasetBuilder(GPTDataset, sizes, lambda: True, config).build()
    num_elements = len(datasets[0].dataset.sequence_lengths)
    ranges = ref_split_ranges(config.split_matrix, num_elements)
    case = OrderedDict()
    case["name"] = name
    case["dataset"] = os.path.basename(prefix)
    case["config"] = OrderedDict(
        random_seed=seed,
        sequence_length=seq_len,
        split=split,
        split_matrix=[list(m) if m else None for m in config.split_matrix],
        split_ranges=ranges,
        sizes=list(sizes),
        add_extra_token_to_sequence=config.add_extra_token_to_sequence,
        drop_last_partial_validation_sequence=config.drop_last_partial_validation_sequence,
        reset_position_ids=config.reset_position_ids,
        reset_attention_mask=config.reset_attention_mask,
        eod_mask_loss=config.eod_mask_loss,
        eod=tokenizer.eod,
        pad_token_id=datasets[0]._pad_token_id,
    )
    case["splits"] = []
    for i, ds in enumerate(datasets):
        if ds is None:
            continue
        assert [int(ds.indices[0]), int(ds.indices[-1]) + 1] == ranges[i] if len(ds.indices) else True
        case["splits"].append(dump_gpt_dataset(ds, cache_dir, 3 if i == 0 else (1 if eval_samples else 0),
                                             with_description))
    return case


def generate(out):
    import torch.distributed as dist
    from megatron.core.datasets import helpers
    from megatron.core.datasets.blended_megatron_dataset_builder import (
        BlendedMegatronDatasetBuilder,
        _get_size_per_split_per_dataset,
    )
    from megatron.core.datasets.blended_megatron_dataset_config import (
        convert_split_vector_to_split_matrix,
        parse_and_normalize_split,
    )
    from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig
    from megatron.core.datasets.indexed_dataset import DType
    from megatron.core.datasets.utils import normalize

    os.makedirs(out, exist_ok=True)
    # Work inside DIR with bare prefixes ("gpt_docs"): dataset_path enters the unique description, so
    # the recorded MD5s stay independent of where the repository lives.
    os.chdir(out)
    out = ""

    # The re-implemented RNG must agree with numpy before anything else is trusted.
    for seed in (0, 1, 1234, 2**32 - 1):
        for n in (0, 1, 2, 7, 700, 3000):
            a = numpy.arange(n, dtype=numpy.int32)
            rs = numpy.random.RandomState(seed)
            rs.shuffle(a)
            rs.shuffle(a)
            b = list(range(n))
            mt = MT19937(seed)
            mt.shuffle(b)
            mt.shuffle(b)
            assert a.tolist() == b, (seed, n)

    # ---- small indexed datasets -------------------------------------------------------------
    assert DType.optimal_dtype(65499) == numpy.uint16 and DType.optimal_dtype(65500) == numpy.int32
    uint16_plan = [
        ("items", [[11, 22, 33, 0]]),                                   # 1 sequence via add_item
        ("items", [[5, 6], [7, 8, 9], [65499, 0]]),                     # 3 sequences, one document
        ("document", [42], [1]),                                        # length-1 document
        ("document", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0], [13]),
        ("document", [100, 200, 300, 400, 0], [2, 3]),                  # add_document with 2 sequences
        ("items", [[65535 - 36, 1, 0]]),                                # large token id near the vocab cap
        ("document", [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 0], [11]),
    ]
    int32_plan = [
        ("document", [70000, 65536, 65535, 0], [4]),
        ("items", [[123456, 7], [2147483647]]),                        # max int32 token
        ("document", [], []),                                           # empty document: zero sequences
        ("document", [99999], [1]),
        ("items", [[1, 100000, 2, 100001, 3, 0]]),
        ("document", [8, 8, 8, 131071, 0], [1, 1, 3]),
        ("document", [65500, 0], [2]),
    ]
    expected = OrderedDict()
    expected["note"] = ("Written by megatron-core IndexedDatasetBuilder; tokens are per sequence; "
                        "document_indices has a leading 0 and one entry per document (sequence index "
                        "one past its last sequence); the .idx 'document count' field stores "
                        "len(document_indices) = num_documents + 1. small_int32 has an empty document.")
    expected["files"] = OrderedDict()
    for name, dtype, plan in (("small_uint16", DType.optimal_dtype(50257), uint16_plan),
                              ("small_int32", DType.optimal_dtype(131072), int32_plan)):
        prefix, entry = build_small(out, name, dtype, plan)
        expected["files"][name] = entry
        check_against(prefix, entry)  # megatron reader + raw parse
    write_json(os.path.join(out, "small_expected.json"), expected)

    # ---- GPTDataset indices --------------------------------------------------------------------
    eod, vocab = 999, 1000
    tokenizer = FixtureTokenizer(eod, vocab)
    gpt_prefix = write_gpt_docs(out, "gpt_docs", 20261121, 40, eod, vocab)
    gpt_b_prefix = write_gpt_docs(out, "gpt_docs_b", 7, 24, eod, vocab)

    tmp = tempfile.mkdtemp(prefix="mcore_fixtures_")
    # BlendedDataset calls torch.distributed.get_rank() when caching: a one-process gloo group.
    if not dist.is_initialized():
        dist.init_process_group("gloo", init_method=f"file://{os.path.join(tmp, 'pg')}", rank=0, world_size=1)
    cache = os.path.join(tmp, "cache")

    sizes_gpt = read_idx_raw(gpt_prefix + ".idx")["lengths"].tolist()
    train_range = ref_split_ranges(convert_split_vector_to_split_matrix(parse_and_normalize_split("8,1,1")), 40)[0]
    train_tokens = sum(sizes_gpt[train_range[0]:train_range[1]])
    per_epoch16 = (train_tokens - 1) // 16
    # 3 epochs with a small final epoch (separate) and 2 epochs with a large one (not separate)
    n_sep = ((2 * train_tokens - 1) // 16) + max(1, per_epoch16 // 4)
    n_nosep = ((1 * train_tokens - 1) // 16) + int(0.9 * per_epoch16)

    cases = [
        gpt_case("one_epoch_seq16", gpt_prefix, cache, 1234, 16, "8,1,1", [20, 4, 2], tokenizer,
                 with_description=True),
        gpt_case("three_epochs_separate_final_seq16", gpt_prefix, cache, 1234, 16, "8,1,1", [n_sep, None, None],
                 tokenizer, eval_samples=False),
        gpt_case("two_epochs_joint_seq16", gpt_prefix, cache, 1234, 16, "8,1,1", [n_nosep, 3, 3], tokenizer,
                 eval_samples=False),
        gpt_case("seq7_seed42_split969", gpt_prefix, cache, 42, 7, "969,30,1", [30, 3, None], tokenizer),
        gpt_case("no_extra_token_eod_flags_seq16", gpt_prefix, cache, 7, 16, "8,1,1", [10, 5, 2], tokenizer,
                 add_extra_token_to_sequence=False, drop_last_partial_validation_sequence=False,
                 eod_mask_loss=True, reset_position_ids=True, reset_attention_mask=True),
    ]
    assert cases[1]["splits"][0]["separate_final_epoch"] and cases[1]["splits"][0]["num_epochs"] == 3
    assert not cases[2]["splits"][0]["separate_final_epoch"] and cases[2]["splits"][0]["num_epochs"] == 2

    split_examples = []
    for s, n in (("969,30,1", 40), ("969, 30, 1", 1000), ("8,1,1", 40), ("1,1,2", 10), ("1,1,2", 6),
                 ("99,1", 50), ("90,5,5", 30), ("0.7,0.2,0.1", 17)):
        vec = parse_and_normalize_split(s)
        mat = convert_split_vector_to_split_matrix(vec)
        split_examples.append(OrderedDict(split=s, num_elements=n, vector=vec,
                                          matrix=[list(m) if m else None for m in mat],
                                          ranges=ref_split_ranges(mat, n)))

    gpt = OrderedDict()
    gpt["note"] = ("megatron-core 0.16.1 GPTDataset built through BlendedMegatronDatasetBuilder with a single "
                   "prefix (weights None). Tokenizer: eod=999, vocab_size=1000, no pad -> pad_token_id=-1. "
                   "document_index holds sequence ids of the .idx (GPT splits by sequence). sample_index rows are "
                   "[index into document_index, token offset]. samples[i] is dataset[i] (shuffle applied). "
                   "loss_mask as 0/1 ints; position_ids only where reset_position_ids (else 0..n-1). "
                   "create_attention_mask=False.")
    gpt["datasets"] = OrderedDict(
        gpt_docs=OrderedDict(num_sequences=40, sequence_lengths=sizes_gpt),
        gpt_docs_b=OrderedDict(num_sequences=24, sequence_lengths=read_idx_raw(gpt_b_prefix + ".idx")["lengths"].tolist()),
    )
    gpt["split_examples"] = split_examples
    gpt["cases"] = cases
    write_json(os.path.join(out, "gpt_indices.json"), gpt)

    # ---- blends ------------------------------------------------------------------------------------
    blend = OrderedDict()
    blend["note"] = ("helpers.build_blending_indices(dataset_index:int16, dataset_sample_index:int64, weights, "
                     "n, size) and the BlendedMegatronDatasetBuilder size arithmetic (surplus 0.005).")
    direct = []
    for weights, size in (([0.3, 0.7], 50), ([0.2, 0.5, 0.3], 50), ([1.0, 1.0, 1.0], 20), ([0.05, 0.95], 30)):
        w = normalize(weights)
        di = numpy.zeros(size, dtype=numpy.int16)
        dsi = numpy.zeros(size, dtype=numpy.int64)
        helpers.build_blending_indices(di, dsi, w, len(w), size, False)
        ref = ref_blending_indices(w, size)
        assert (di.tolist(), dsi.tolist()) == ref
        direct.append(OrderedDict(raw_weights=weights, weights=w, size=size, dataset_index=di.tolist(),
                                  dataset_sample_index=dsi.tolist()))
    blend["build_blending_indices"] = direct
    exhaustive = []
    for sizes in ([3, 5, 2], [4, 1]):
        total = sum(sizes)
        di = numpy.zeros(total, dtype=numpy.int16)
        dsi = numpy.zeros(total, dtype=numpy.int64)
        helpers.build_exhaustive_blending_indices(di, dsi, numpy.array(sizes, dtype=numpy.int64), len(sizes))
        assert (di.tolist(), dsi.tolist()) == ref_exhaustive_blending_indices(sizes)
        exhaustive.append(OrderedDict(sizes=sizes, dataset_index=di.tolist(), dataset_sample_index=dsi.tolist()))
    blend["build_exhaustive_blending_indices"] = exhaustive

    arithmetic = []
    for raw, (train_iters, gbs, eval_interval, eval_iters) in (([30, 70], (100, 8, 50, 2)),
                                                                ([0.2, 0.5, 0.3], (1000, 256, 100, 10)),
                                                                ([1, 2], (7, 3, 5, 1))):
        sizes = [train_iters * gbs, (train_iters // eval_interval + 1) * eval_iters * gbs, eval_iters * gbs]
        w = normalize(raw)
        target = _get_size_per_split_per_dataset(w, sizes)
        buffer = _get_size_per_split_per_dataset(w, sizes, surplus=0.005)
        assert target == ref_sizes_per_dataset(w, sizes, 0.0) and buffer == ref_sizes_per_dataset(w, sizes, 0.005)
        arithmetic.append(OrderedDict(
            raw_weights=raw, train_iters=train_iters, global_batch_size=gbs, eval_interval=eval_interval,
            eval_iters=eval_iters, sizes=sizes, normalized_weights=w,
            target_per_dataset_per_split=target, buffer_per_dataset_per_split=buffer,
            blended_size_per_split=[sum(t[i] for t in target) for i in range(3)],
            blended_weights=normalize(w)))
    blend["builder_arithmetic"] = arithmetic

    # end to end: two prefixes, weights [0.3, 0.7]
    config = GPTDatasetConfig(
        random_seed=1234, sequence_length=16, blend=([gpt_prefix, gpt_b_prefix], [0.3, 0.7]), split="8,1,1",
        path_to_cache=cache, tokenizer=tokenizer, reset_position_ids=False, reset_attention_mask=False,
        eod_mask_loss=False, create_attention_mask=False)
    sizes = [40, 8, 4]
    blended = BlendedMegatronDatasetBuilder(GPTDataset, sizes, lambda: True, config).build()
    e2e = OrderedDict(prefixes=["gpt_docs", "gpt_docs_b"], raw_weights=[0.3, 0.7], random_seed=1234,
                      sequence_length=16, split="8,1,1", sizes=sizes, splits=[])
    w = normalize([0.3, 0.7])
    target = _get_size_per_split_per_dataset(w, sizes)
    buffer = _get_size_per_split_per_dataset(w, sizes, surplus=0.005)
    for i, bd in enumerate(blended):
        rec = OrderedDict(split=SPLIT_NAMES[i], weights=bd.weights, size=bd.size,
                          per_dataset_num_samples=[d.num_samples for d in bd.datasets],
                          per_dataset_len=[len(d) for d in bd.datasets],
                          per_dataset_shuffle_index=[to_list(d.shuffle_index) for d in bd.datasets],
                          dataset_index=to_list(bd.dataset_index),
                          dataset_sample_index=to_list(bd.dataset_sample_index),
                          unique_description_md5=bd.unique_description_hash)
        assert rec["per_dataset_num_samples"] == [buffer[0][i], buffer[1][i]]
        assert rec["size"] == target[0][i] + target[1][i]
        assert (rec["dataset_index"], rec["dataset_sample_index"]) == ref_blending_indices(bd.weights, bd.size)
        for k, d in enumerate(bd.datasets):
            r = ref_gpt_indices(d.dataset.sequence_lengths.tolist(), d.indices.tolist(), d.num_samples, 16, 1234, 1,
                                True)
            assert r["shuffle_index"] == to_list(d.shuffle_index)
        rec["first_samples"] = [OrderedDict(index=j, dataset_id=int(bd[j]["dataset_id"]),
                                            tokens=to_list(bd[j]["tokens"])) for j in range(min(3, len(bd)))]
        e2e["splits"].append(rec)
    blend["end_to_end"] = e2e
    write_json(os.path.join(out, "blend_indices.json"), blend)

    dist.destroy_process_group()
    shutil.rmtree(tmp, ignore_errors=True)
    for name in ("small_uint16", "small_int32"):
        print("verify", name, "->", "ok" if not verify_errors(os.path.join(out, name), expected["files"][name]) else "FAIL")
    for f in sorted(os.listdir(".")):
        print(f"{os.path.getsize(f):8d}  {f}")


# ----------------------------------------------------------------------------------------------
# verify
# ----------------------------------------------------------------------------------------------
def verify_errors(prefix, exp):
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    errors = []

    def check(what, got, want):
        if got != want:
            g, w = str(got), str(want)
            errors.append(f"{what}: got {g[:300]} expected {w[:300]}")

    for ext in (".bin", ".idx"):
        if not os.path.exists(prefix + ext):
            return [f"missing {prefix + ext}"]
    raw = read_idx_raw(prefix + ".idx")
    check("idx version", raw["version"], 1)
    check("idx trailing bytes (file size - parsed size)", raw["size"] - raw["end"], 0)
    if "dtype_code" in exp:
        check("dtype code", raw["code"], exp["dtype_code"])
    ds = IndexedDataset(prefix)
    idx = ds.index
    check("dtype", numpy.dtype(idx.dtype).name, exp["dtype"])
    lengths = idx.sequence_lengths.tolist()
    check("sequence_lengths", lengths, exp["sequence_lengths"])
    check("document_indices", idx.document_indices.tolist(), exp["document_indices"])
    itemsize = numpy.dtype(idx.dtype).itemsize
    want_ptrs = numpy.concatenate([[0], numpy.cumsum(numpy.asarray(lengths, dtype=numpy.int64))[:-1]]) * itemsize \
        if lengths else numpy.zeros(0, dtype=numpy.int64)
    check("sequence_pointers (consistency with lengths)", idx.sequence_pointers.tolist(), want_ptrs.tolist())
    if "sequence_pointers" in exp:
        check("sequence_pointers", idx.sequence_pointers.tolist(), exp["sequence_pointers"])
    check(".bin size", os.path.getsize(prefix + ".bin"), sum(lengths) * itemsize)
    if "tokens" in exp:
        got = [ds[i].tolist() for i in range(len(ds))]
        want = exp["tokens"]
        if want and not isinstance(want[0], list):
            check("tokens (flat)", [t for s in got for t in s], want)
        else:
            check("number of token sequences", len(got), len(want))
            for i, (g, w) in enumerate(zip(got, want)):
                if g != w:
                    check(f"tokens of sequence {i}", g, w)
                    if len(errors) > 20:
                        break
    return errors


def check_against(prefix, entry):
    errors = verify_errors(prefix, entry)
    if errors:
        raise AssertionError("\n".join(errors))


def verify(prefix, path, entry_name):
    with open(path) as f:
        exp = json.load(f)
    if "files" in exp:
        name = entry_name or os.path.basename(prefix)
        if name not in exp["files"]:
            print(f"no entry {name!r} in {path}; have {list(exp['files'])} (use --entry)", file=sys.stderr)
            return 2
        exp = exp["files"][name]
    errors = verify_errors(prefix, exp)
    if errors:
        print(f"MISMATCH {prefix}:", file=sys.stderr)
        for e in errors:
            print("  " + e, file=sys.stderr)
        return 1
    print(f"OK {prefix}: {len(exp['sequence_lengths'])} sequences, {len(exp['document_indices']) - 1} documents, "
          f"{exp['dtype']}")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--out", default=DEFAULT_OUT)
    v = sub.add_parser("verify")
    v.add_argument("prefix")
    v.add_argument("expected_json")
    v.add_argument("--entry", default=None)
    args = p.parse_args()
    if args.mode == "generate":
        generate(os.path.normpath(args.out))
        return 0
    return verify(args.prefix, args.expected_json, args.entry)


if __name__ == "__main__":
    sys.exit(main())

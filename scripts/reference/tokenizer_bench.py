#!/usr/bin/env python3
"""HF `tokenizers` encode throughput reference (for comparing the Swift tokenizer).

Input: data/devils-dictionary/devils_dictionary.jsonl repeated --repeat times
(default 10, ~3.8 MB of UTF-8 text, 10,000 documents).  Each document is
encoded separately.

Tokenizers measured:
  fixture          Tests/DataTests/Fixtures/tokenizer/tokenizer.json (vocab 2048)
  fixture-nocache  same vocab/merges, BPE(cache_capacity=0): no word cache
                   (HF caches word -> ids, 10,000 entries by default; on this
                   repetitive corpus the cache makes a large difference)
  gpt2             the real GPT-2 vocabulary (50,257) if gpt2.tiktoken is found
                   (see tokenizer_fixtures.find_gpt2_tiktoken: it ships in the
                   openai-whisper sdist), else "gpt2-like": a ByteLevel BPE of
                   vocab 8192 trained on the corpus with the fixture settings.

  tiktoken-*       (only if `tiktoken` is installed) the same vocabularies in
                   tiktoken: ranks = ids (valid because HF's trained ids are in
                   merge order), encode(allowed_special="all") /
                   encode_batch(num_threads=N).  A fast-implementation yardstick.

Modes:
  loop     for doc in docs: tok.encode(doc)   (never parallel)
  batch    tok.encode_batch(docs)             (rayon-parallel over documents)
  preprocess  Megatron-preprocess equivalent with the fixture tokenizer:
           read jsonl line by line, json.loads, encode_batch in chunks of
           --chunk docs, append <|endoftext|> to every doc, concatenate into a
           numpy uint16 token array + int64 doc lengths, write both to a temp
           file (np.save).  Timed end to end, reported in docs/s and MB/s of
           text.

Each thread count runs in a fresh subprocess with RAYON_NUM_THREADS=N and
TOKENIZERS_PARALLELISM=true (rayon's pool size is fixed at first use).
Timings: best of --reps runs (after one warm-up run).  MB = 1e6 bytes of UTF-8.

Usage: python3 scripts/reference/tokenizer_bench.py [--repeat 10] [--threads 1 2]
                                                     [--reps 2] [--json]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
CORPUS = os.path.join(ROOT, "data", "devils-dictionary", "devils_dictionary.jsonl")
FIX = os.path.join(ROOT, "Tests", "DataTests", "Fixtures", "tokenizer")
SPECIAL = "<|endoftext|>"


def best_of(fn, reps):
    fn()  # warm-up
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def load_tokenizers(docs):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    sys.path.insert(0, HERE)
    import tokenizer_fixtures as tf

    def byte_level(model):
        t = Tokenizer(model)
        t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        t.decoder = decoders.ByteLevel()
        t.add_special_tokens([SPECIAL])
        return t

    toks = {"fixture": Tokenizer.from_file(os.path.join(FIX, "tokenizer.json"))}
    toks["fixture-nocache"] = byte_level(models.BPE.from_file(
        os.path.join(FIX, "vocab.json"), os.path.join(FIX, "merges.txt"), cache_capacity=0))
    p = tf.find_gpt2_tiktoken(os.environ.get("GPT2_TIKTOKEN"))
    if p:
        _, vocab, merges = tf.gpt2_from_tiktoken(p)
        toks["gpt2"] = byte_level(models.BPE(vocab=vocab, merges=merges))
    else:
        toks["gpt2-like-8192"] = tf.train_hf(docs, 8192)
    return toks


def load_tiktoken(toks):
    try:
        import tiktoken
    except ImportError:
        return {}
    sys.path.insert(0, HERE)
    import tokenizer_fixtures as tf
    out = {}
    for name in ("fixture", "gpt2"):
        if name not in toks:
            continue
        vocab = toks[name].get_vocab()
        ranks = {tf.token_bytes(t): i for t, i in vocab.items() if t != SPECIAL}
        enc = tiktoken.Encoding("bench_" + name, pat_str=tf.GPT2_PATTERN, mergeable_ranks=ranks,
                                special_tokens={SPECIAL: vocab[SPECIAL]})
        out["tiktoken-" + name] = enc
    return out


def preprocess(jsonl_path, tok, chunk, out_path):
    import numpy as np
    eod = tok.token_to_id(SPECIAL)
    arrays, lengths, ndocs = [], [], 0
    with open(jsonl_path, encoding="utf-8") as f:
        batch = []
        for line in f:
            batch.append(json.loads(line)["text"])
            if len(batch) == chunk:
                _pp_batch(tok, batch, eod, arrays, lengths)
                ndocs += len(batch)
                batch = []
        if batch:
            _pp_batch(tok, batch, eod, arrays, lengths)
            ndocs += len(batch)
    tokens = np.concatenate(arrays) if arrays else np.zeros(0, np.uint16)
    with open(out_path, "wb") as f:
        np.save(f, tokens)
        np.save(f, np.asarray(lengths, dtype=np.int64))
    return ndocs, int(tokens.size)


def _pp_batch(tok, batch, eod, arrays, lengths):
    import numpy as np
    for e in tok.encode_batch(batch):
        ids = e.ids
        ids.append(eod)
        arrays.append(np.asarray(ids, dtype=np.uint16))
        lengths.append(len(ids))


def worker(args):
    with open(CORPUS, encoding="utf-8") as f:
        base = [json.loads(l)["text"] for l in f if l.strip()]
    docs = base * args.repeat
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    toks = load_tokenizers(base)
    rows = []
    for name, tok in toks.items():
        ntok = sum(len(e.ids) for e in tok.encode_batch(docs))
        for mode in ("loop", "batch"):
            if mode == "loop":
                fn = lambda: [tok.encode(d) for d in docs]
            else:
                fn = lambda: tok.encode_batch(docs)
            t = best_of(fn, args.reps)
            rows.append({"threads": args.threads_one, "tokenizer": name, "mode": mode,
                         "docs": len(docs), "bytes": nbytes, "tokens": ntok, "seconds": round(t, 4),
                         "MB_per_s": round(nbytes / t / 1e6, 3), "docs_per_s": round(len(docs) / t, 1)})
    for name, enc in load_tiktoken(toks).items():
        ntok = sum(len(x) for x in enc.encode_batch(docs, num_threads=args.threads_one, allowed_special="all"))
        ref = sum(len(e.ids) for e in toks[name[len("tiktoken-"):]].encode_batch(docs))
        assert ntok == ref, (name, ntok, ref)
        for mode in ("loop", "batch"):
            if mode == "loop":
                fn = lambda: [enc.encode(d, allowed_special="all") for d in docs]
            else:
                fn = lambda: enc.encode_batch(docs, num_threads=args.threads_one, allowed_special="all")
            t = best_of(fn, args.reps)
            rows.append({"threads": args.threads_one, "tokenizer": name, "mode": mode,
                         "docs": len(docs), "bytes": nbytes, "tokens": ntok, "seconds": round(t, 4),
                         "MB_per_s": round(nbytes / t / 1e6, 3), "docs_per_s": round(len(docs) / t, 1)})
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "in.jsonl")
        with open(src, "w", encoding="utf-8") as f:
            for d in docs:
                f.write(json.dumps({"text": d}, ensure_ascii=False) + "\n")
        out = os.path.join(tmp, "out.npy")
        res = {}
        t = best_of(lambda: res.update(r=preprocess(src, toks["fixture"], args.chunk, out)), args.reps)
        ndocs, ntok = res["r"]
        rows.append({"threads": args.threads_one, "tokenizer": "fixture", "mode": "preprocess",
                     "docs": ndocs, "bytes": nbytes, "tokens": ntok, "seconds": round(t, 4),
                     "MB_per_s": round(nbytes / t / 1e6, 3), "docs_per_s": round(ndocs / t, 1),
                     "file_bytes": os.path.getsize(src)})
    json.dump(rows, sys.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--threads-one", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)

    import tokenizers
    rows = []
    for n in args.threads:
        env = dict(os.environ, RAYON_NUM_THREADS=str(n), TOKENIZERS_PARALLELISM="true")
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--threads-one", str(n),
               "--repeat", str(args.repeat), "--reps", str(args.reps), "--chunk", str(args.chunk)]
        r = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
        rows += json.loads(r.stdout)
    if args.json:
        print(json.dumps({"tokenizers_version": tokenizers.__version__, "cpu_count": os.cpu_count(),
                          "repeat": args.repeat, "rows": rows}, indent=1))
        return
    print(f"HF tokenizers {tokenizers.__version__}, corpus x{args.repeat}, "
          f"{rows[0]['docs']} docs, {rows[0]['bytes'] / 1e6:.2f} MB, best of {args.reps}, "
          f"{os.cpu_count()} CPUs")
    print(f"{'thr':>3} {'tokenizer':<16} {'mode':<10} {'tokens':>9} {'sec':>8} {'MB/s':>8} {'docs/s':>10}")
    for r in rows:
        print(f"{r['threads']:>3} {r['tokenizer']:<16} {r['mode']:<10} {r['tokens']:>9} "
              f"{r['seconds']:>8.3f} {r['MB_per_s']:>8.2f} {r['docs_per_s']:>10.0f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Speed of `megatron curate dedup` (and of the whole `curate run` pipeline) against datasketch on a
generated corpus.

Generates a JSONL corpus (default about 200 MB: documents of 250-500 words drawn from a Zipfian
vocabulary, with a tenth of them near-duplicates of earlier ones, 0.2 to 2 per cent of their
words replaced, and some exact copies), then times:
  - `megatron curate dedup` (exact + MinHash LSH, defaults) at --threads 1 and 2;
  - `megatron curate run`: filter (thresholds relaxed for the generated text), dedup,
    decontamination against 50 passages taken from the corpus, preprocess with the test
    tokenizer, at threads 1 and 2;
  - datatrove's MinHash deduplication (`--datatrove`: its four stages, signatures, buckets,
    clusters and filter, with its defaults of 5-grams and 14 buckets x 8 hashes (SHA-1 hashes), on the corpus
    split into two files so that two tasks can share it), at 1 and 2 workers;
  - datasketch 2.0 MinHash (update_batch over the same word 5-gram shingles, 128 permutations)
    + MinHashLSH(threshold=0.8) insert and query, on the first --datasketch-docs documents
    (it is slow; its documents per second are what is compared).
Prints documents per second and MB per second for each, and how many duplicates each found.

    python3 scripts/bench/curate_dedup.py [--megabytes 200] [--binary .build/release/megatron]
"""
import argparse
import json
import os
import random
import resource
import subprocess
import tempfile
import time


def generate(path, megabytes, seed=7):
    rng = random.Random(seed)
    vocabulary = ["w%d" % i for i in range(30000)]
    weights = [1.0 / (i + 1) for i in range(len(vocabulary))]
    documents, size, planted = [], 0, 0
    with open(path, "w") as out:
        while size < megabytes * 1_000_000:
            if documents and rng.random() < 0.1:
                words = list(rng.choice(documents[-2000:]))
                for _ in range(max(1, int(len(words) * rng.uniform(0.002, 0.02)))):
                    words[rng.randrange(len(words))] = rng.choice(vocabulary)
                planted += 1
            elif documents and rng.random() < 0.02:
                words = list(rng.choice(documents[-2000:]))
                planted += 1
            else:
                words = rng.choices(vocabulary, weights, k=rng.randint(250, 500))
            documents.append(words)
            line = json.dumps({"text": " ".join(words)}) + "\n"
            out.write(line)
            size += len(line)
    return len(documents), size, planted


def datasketch_rate(path, count):
    from datasketch import MinHash, MinHashLSH
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    duplicates = 0
    start = time.perf_counter()
    with open(path) as file:
        for i, line in enumerate(file):
            if i == count:
                break
            words = " ".join(json.loads(line)["text"].split()).split(" ")
            shingles = [" ".join(words[j:j + 5]).encode() for j in range(len(words) - 4)] or [" ".join(words).encode()]
            m = MinHash(num_perm=128)
            m.update_batch(shingles)
            if lsh.query(m):
                duplicates += 1
            else:
                lsh.insert(str(i), m)
    return count / (time.perf_counter() - start), duplicates


def datatrove_seconds(corpus, work, workers):
    """datatrove's four MinHash deduplication stages over `corpus` (split in two files), with
    `workers` local workers; returns the seconds and the documents it removed."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers.jsonl import JsonlWriter
    from datatrove.utils.text import TextNormConfig
    base = os.path.join(work, f"datatrove{workers}")
    data = os.path.join(base, "input")
    os.makedirs(data)
    with open(corpus) as source:
        lines = source.readlines()
    for part in range(2):
        with open(os.path.join(data, f"part{part}.jsonl"), "w") as out:
            out.writelines(lines[part * len(lines) // 2:(part + 1) * len(lines) // 2])
    # Its defaults, except that numbers are not normalized: the generated words are w0, w1, ...,
    # which its default number normalization folds into one word, making every document a copy.
    config = MinhashConfig(norm_config=TextNormConfig(norm_numbers=False))
    logs = os.path.join(base, "logs")
    start = time.perf_counter()
    LocalPipelineExecutor(pipeline=[JsonlReader(data), MinhashDedupSignature(output_folder=f"{base}/signatures", config=config)],
                          tasks=2, workers=workers, logging_dir=f"{logs}/1").run()
    LocalPipelineExecutor(pipeline=[MinhashDedupBuckets(input_folder=f"{base}/signatures", output_folder=f"{base}/buckets",
                                                        config=config)],
                          tasks=config.num_buckets, workers=workers, logging_dir=f"{logs}/2").run()
    LocalPipelineExecutor(pipeline=[MinhashDedupCluster(input_folder=f"{base}/buckets", output_folder=f"{base}/remove",
                                                        config=config)],
                          tasks=1, logging_dir=f"{logs}/3").run()
    LocalPipelineExecutor(pipeline=[JsonlReader(data), MinhashDedupFilter(input_folder=f"{base}/remove"),
                                    JsonlWriter(f"{base}/output")],
                          tasks=2, workers=workers, logging_dir=f"{logs}/4").run()
    seconds = time.perf_counter() - start
    kept = 0
    for name in os.listdir(f"{base}/output"):
        import gzip
        opener = gzip.open if name.endswith(".gz") else open
        with opener(os.path.join(base, "output", name), "rt") as file:
            kept += sum(1 for _ in file)
    return seconds, len(lines) - kept


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=float, default=200)
    parser.add_argument("--binary", default=".build/release/megatron")
    parser.add_argument("--datasketch-docs", type=int, default=5000)
    parser.add_argument("--datatrove", action="store_true", help="also time datatrove's MinHash deduplication")
    parser.add_argument("--skip-pipeline", action="store_true", help="do not time curate run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        corpus = os.path.join(work, "corpus.jsonl")
        documents, size, planted = generate(corpus, args.megabytes)
        print(f"corpus: {documents} documents, {size / 1e6:.1f} MB, {planted} planted duplicates")
        for threads in (1, 2):
            output = os.path.join(work, f"out{threads}.jsonl")
            start = time.perf_counter()
            subprocess.run([args.binary, "curate", "dedup", "--input", corpus, "--output", output, "--threads", str(threads)],
                           check=True, stdout=subprocess.DEVNULL)
            seconds = time.perf_counter() - start
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            with open(output + ".report.json") as file:
                report = json.load(file)["datasets"][0]
            print(f"megatron curate dedup, {threads} thread(s): {documents / seconds:,.0f} docs/s, {size / 1e6 / seconds:.1f} MB/s, "
                  f"{seconds:.1f} s; removed {report['exact_duplicates']} exact + {report['near_duplicates']} near; "
                  f"peak RSS so far {peak:.0f} MiB")
        tokenizer = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                 "Tests/DataTests/Fixtures/tokenizer/tokenizer.json")
        tasks = os.path.join(work, "tasks.jsonl")
        with open(corpus) as source, open(tasks, "w") as out:
            for i, line in enumerate(source):
                if i % 2000 == 5:
                    words = json.loads(line)["text"].split()
                    out.write(json.dumps({"text": " ".join(words[100:140])}) + "\n")
        for threads in (() if args.skip_pipeline else (1, 2)):
            config = os.path.join(work, f"run{threads}.json")
            with open(config, "w") as file:
                json.dump({"output_dir": os.path.join(work, f"run{threads}"), "tokenizer_file": tokenizer, "threads": threads,
                           "datasets": [{"name": "web", "input": corpus, "weight": 1}],
                           "filter": {"min_stop_words": 0, "max_mean_word_length": 20},
                           "dedup": {"threshold": 0.8}, "decontaminate": {"task_data": [tasks]}}, file)
            start = time.perf_counter()
            subprocess.run([args.binary, "curate", "run", config], check=True, stdout=subprocess.DEVNULL)
            seconds = time.perf_counter() - start
            print(f"megatron curate run (filter, dedup, decontaminate, preprocess), {threads} thread(s): "
                  f"{documents / seconds:,.0f} docs/s, {size / 1e6 / seconds:.1f} MB/s, {seconds:.1f} s")
        if args.datatrove:
            for workers in (1, 2):
                seconds, removed = datatrove_seconds(corpus, work, workers)
                print(f"datatrove MinHash dedup (4 stages), {workers} worker(s): {documents / seconds:,.0f} docs/s, "
                      f"{size / 1e6 / seconds:.1f} MB/s, {seconds:.1f} s; removed {removed}")
        rate, duplicates = datasketch_rate(corpus, min(args.datasketch_docs, documents))
        print(f"datasketch MinHash + MinHashLSH (first {min(args.datasketch_docs, documents)} documents): {rate:,.0f} docs/s, "
              f"{duplicates} duplicates found among them")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Reference fixtures for `megatron curate`, from the reference tools themselves:

  minhash.json      documents (odd Unicode, whitespace of every kind, short ones), their
                    normalised text (" ".join(unicodedata.normalize("NFC", text).split())) and
                    datasketch MinHash signatures of their word 5-gram shingles, for the default
                    scheme (affine32, datasketch 2.x) and the legacy one (datasketch < 2), 128
                    permutations seed 1 and 64 permutations seed 7; and datasketch's
                    `_optimal_param` for a few thresholds and weights.
  janitor.json      documents with planted task passages and lm-eval 0.4.13's
                    `lm_eval.decontamination.janitor.Janitor` (python mode) output for them:
                    whether each is contaminated and the clean pieces kept, for the default
                    settings (13-grams, window 200, 10 matches, slices of 200) and a small one.

    pip install datasketch==2.0.0 lm-eval==0.4.13 numpy scipy scikit-learn
    python3 scripts/reference/curation_fixtures.py
"""
import json
import os
import random
import string
import unicodedata

from datasketch import MinHash
from datasketch.lsh import _optimal_param

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests/CurationTests/Fixtures")
WORDS = ("the of and to in a is that for it as was with be by on not he this are or his from at which but have an they "
         "you were her she there been one all we their has would when if so no will more time can said some what up out "
         "café naïve über straße 東京 данные ξένος ünïcödé").split()


def normalise(text):
    return " ".join(unicodedata.normalize("NFC", text).split())


def shingles(text, n=5):
    words = text.split(" ") if text else []
    if not words:
        return []
    if len(words) <= n:
        return [" ".join(words)]
    return [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]


def minhash_fixture(rng):
    documents = [
        "", "   ", "one", "two words", "exactly five words in here", "six words are in this one",
        "Cafe\u0301 and cafe\u0301 decomposed\u00a0with a no-break\u2003em space\tand\ttabs\n\nnewlines\r\n end",
        "\u3000full-width space\u2028line separator\x1cfile separator\x85next line end of text",
        "the the the the the the the the the the",
    ]
    for _ in range(30):
        length = rng.randint(5, 120)
        words = [rng.choice(WORDS) for _ in range(length)]
        separators = [rng.choice([" ", " ", " ", "  ", "\t", "\n", "\u00a0"]) for _ in range(length)]
        documents.append("".join(w + s for w, s in zip(words, separators)))
    records = []
    for text in documents:
        normal = normalise(text)
        record = {"text": text, "normalized": normal}
        for scheme in ("affine32", "legacy"):
            for num_perm, seed in ((128, 1), (64, 7)):
                m = MinHash(num_perm=num_perm, seed=seed, scheme=scheme)
                for shingle in shingles(normal):
                    m.update(shingle.encode("utf-8"))
                record[f"{scheme}_{num_perm}_{seed}"] = [int(v) for v in m.hashvalues]
        records.append(record)
    optimal = []
    for threshold, num_perm, fp, fn in ((0.8, 128, 0.5, 0.5), (0.8, 128, 0.05, 0.95), (0.5, 128, 0.5, 0.5),
                                        (0.9, 256, 0.5, 0.5), (0.7, 64, 0.2, 0.8)):
        b, r = _optimal_param(threshold, num_perm, fp, fn)
        optimal.append({"threshold": threshold, "num_perm": num_perm, "false_positive_weight": fp,
                        "false_negative_weight": fn, "bands": b, "rows": r})
    with open(os.path.join(OUT, "minhash.json"), "w") as file:
        json.dump({"documents": records, "optimal_param": optimal}, file, ensure_ascii=False)
    print("minhash.json:", len(records), "documents")


def janitor_fixture(rng):
    from lm_eval.decontamination.janitor import Janitor, word_ngrams_indices

    def prose(count):
        return " ".join(rng.choice(WORDS) for _ in range(count))

    tasks = [prose(40) + ". " + prose(30) + "?" for _ in range(6)]
    tasks.append("Who wrote 'The Raven'? Edgar Allan Poe wrote it in 1845, at the age of thirty-six -- a poem of grief.")
    documents = []
    for i in range(24):
        parts = [prose(rng.randint(20, 300))]
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3, 12])):  # planted passages, some docs too dirty
            task = rng.choice(tasks)
            words = task.split()
            start = rng.randint(0, max(0, len(words) - 20))
            passage = " ".join(words[start:start + rng.randint(13, 20)])
            if rng.random() < 0.5:  # case and punctuation changes the normalisation removes
                passage = passage.upper().replace(" ", rng.choice([" ", ", ", " -- ", "; "]), 3)
            parts.append(passage)
            parts.append(prose(rng.randint(5, 200)))
        documents.append((" " if i % 3 else "\n").join(parts))
    documents.append("edgar allan poe wrote it in 1845 at the age of thirtysix a poem of grief and then some more words")
    results = {}
    for name, settings in (("default", {}), ("small", {"ngram_n": 5, "window_to_remove": 20, "too_dirty_cutoff": 3,
                                                         "minimum_slice_length": 20})):
        janitor = Janitor(**settings)
        for task in tasks:
            janitor.register_contaminant_python(task)
        outputs = []
        for document in documents:
            contaminated = any(janitor.normalize_string(ngram) in janitor.dirt_ngrams
                               for ngram, _ in word_ngrams_indices(document, janitor.ngram_n))
            outputs.append({"contaminated": contaminated, "pieces": janitor.clean_python(document)})
        results[name] = {"settings": {"ngram_n": janitor.ngram_n, "window_to_remove": janitor.window_to_remove,
                                      "too_dirty_cutoff": janitor.too_dirty_cutoff,
                                      "minimum_slice_length": janitor.minimum_slice_length},
                         "outputs": outputs}
    with open(os.path.join(OUT, "janitor.json"), "w") as file:
        json.dump({"tasks": tasks, "documents": documents, "results": results}, file, ensure_ascii=False)
    print("janitor.json:", len(documents), "documents,",
          {name: sum(o["contaminated"] for o in r["outputs"]) for name, r in results.items()}, "contaminated")


def fnv1a(data):
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def classifier_features(text, buckets, ngrams=2):
    """The Swift QualityClassifier's features: normalised, lower-cased words and word pairs,
    FNV-1a 64 buckets, counts scaled to unit L2 norm."""
    words = normalise(text).lower().split(" ") if normalise(text) else []
    counts = {}
    for n in range(1, ngrams + 1):
        for start in range(0, len(words) - n + 1):
            bucket = fnv1a(" ".join(words[start:start + n]).encode()) % buckets
            counts[bucket] = counts.get(bucket, 0) + 1
    norm = sum(v * v for v in counts.values()) ** 0.5
    return {k: v / norm for k, v in counts.items()}


def classifier_fixture(rng):
    """Positive and negative documents from overlapping word distributions with 12% of the labels
    flipped (held-out accuracy in the 80s, not separable); scikit-learn's LogisticRegression on the
    same features; numpy's pareto draws for GPT-3's sampling rule."""
    import numpy as np
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression
    common = ["c%d" % i for i in range(400)]
    good = ["g%d" % i for i in range(150)]
    bad = ["b%d" % i for i in range(150)]

    def document(positive):
        words = [rng.choice(common) if rng.random() < 0.8 else rng.choice(good if positive else bad) for _ in range(rng.randint(20, 80))]
        return " ".join(words)

    def split(count):
        rows = []
        for _ in range(count):
            positive = rng.random() < 0.5
            label = positive if rng.random() > 0.12 else not positive
            rows.append({"text": document(positive), "label": bool(label)})
        return rows

    train, test = split(800), split(400)
    buckets = 1 << 16

    def matrix(rows):
        data, indices, pointers = [], [], [0]
        for row in rows:
            features = sorted(classifier_features(row["text"], buckets).items())
            indices += [k for k, _ in features]
            data += [v for _, v in features]
            pointers.append(len(indices))
        return csr_matrix((data, indices, pointers), shape=(len(rows), buckets))

    model = LogisticRegression(C=1.0, max_iter=5000)
    model.fit(matrix(train), [r["label"] for r in train])
    accuracy = float(model.score(matrix(test), [r["label"] for r in test]))
    state = np.random.RandomState(5)
    pareto = [float(x) for x in state.pareto(9, size=20)]
    with open(os.path.join(OUT, "classifier.json"), "w") as file:
        json.dump({"buckets": buckets, "train": train, "test": test, "sklearn_test_accuracy": accuracy,
                   "first_features": sorted(classifier_features(train[0]["text"], buckets).items()),
                   "pareto_seed_5_alpha_9": pareto}, file)
    print("classifier.json: scikit-learn held-out accuracy", accuracy)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    minhash_fixture(random.Random(3))
    janitor_fixture(random.Random(5))
    classifier_fixture(random.Random(11))

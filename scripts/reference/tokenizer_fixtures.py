#!/usr/bin/env python3
"""Reference fixtures for the Swift GPT-2 byte-level BPE tokenizer and trainer.

Writes into Tests/DataTests/Fixtures/tokenizer/:

  tokenizer.json          HF `tokenizers` ByteLevel BPE, vocab 2048, trained on
                          data/devils-dictionary/devils_dictionary.jsonl
  vocab.json, merges.txt  the same model in GPT-2 format (merges.txt starts
                          with "#version: 0.2"); written by HF's BPE.save()
  hard_texts.json         {"tokenizer": ..., "encode": [{"text", "ids",
                          "tokens", "pieces"}], "decode": [{"ids", "text",
                          "text_keep_special", "bytes_hex"}]}
                          `pieces` = the pre-tokenizer split (special tokens
                          split out first), as plain Unicode strings.
  hard_texts_gpt2.json    (only if the real GPT-2 vocabulary could be found, see
                          below) the same texts encoded with real GPT-2 ids
  trainer_compression.json  [{"vocab_size", "tokens", "bytes",
                          "tokens_per_byte", ...}] for vocab 1024/4096/8192

Requirements: `pip install tokenizers==0.23.3` (tested with 0.23.3).
Optional: `pip install tiktoken` and the openai-whisper sdist (see
`find_gpt2_tiktoken`) for the real-GPT-2 fixture.

Usage: python3 scripts/reference/tokenizer_fixtures.py [--gpt2-tiktoken PATH]
                                                      [--skip-reference-trainer]

----------------------------------------------------------------------------
TRAINER SETTINGS (what the Swift trainer must mirror)
----------------------------------------------------------------------------
Pipeline:  Tokenizer(models.BPE())  (no unk, no dropout, no byte_fallback,
           no continuing_subword_prefix / end_of_word_suffix)
           normalizer      = none
           pre_tokenizer   = ByteLevel(add_prefix_space=False, use_regex=True)
                             regex (GPT-2):
                             's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
           decoder         = ByteLevel()
           post_processor  = ByteLevel(trim_offsets=False)  (ids unaffected)
Trainer:   trainers.BpeTrainer(vocab_size=V,
                               min_frequency=0,          # BpeTrainer default
                               special_tokens=["<|endoftext|>"],
                               initial_alphabet=ByteLevel.alphabet(),  # 256 chars
                               limit_alphabet=None, max_token_length=None,
                               show_progress=False)
           (NB: the convenience class ByteLevelBPETokenizer.train() defaults to
           min_frequency=2 instead; we use BpeTrainer's default 0.)
           tokenizer.train_from_iterator(docs)  -- one iterator item per
           document (the "text" of each jsonl line).

What HF's BPE trainer (tokenizers/src/models/bpe/trainer.rs) does:
  1. Word counting: every document goes through the pre-tokenizer; each
     pre-token (already byte-level mapped, e.g. "Ġthe") is a "word"; counts
     are summed over the whole corpus.  Words never cross pre-token
     boundaries, so merges never span them.
  2. Vocab ids: special tokens first (<|endoftext|> = 0), then the alphabet =
     (chars seen in words) ∪ initial_alphabet, sorted by Unicode scalar of the
     byte-level char.  For the GPT-2 byte->char map this is the same order as
     GPT-2's first 256 ids, so here id = 1 + GPT-2 byte id.
     SPECIAL TOKENS COUNT TOWARD vocab_size (2048 = 1 special + 256 bytes +
     1791 merges).
  3. Pair counts: for each word every adjacent window counts (overlapping
     runs count more than once: "aaa" contributes (a,a) twice), times the
     word frequency.
  4. Loop while len(vocab) < vocab_size: pick the pair with the highest
     count; ties -> the lexicographically smallest (left_id, right_id) pair
     (ids as assigned so far).  Stop if best count < 1 or < min_frequency.
     New token string = left + right, new id = next id (if the string already
     exists -- possible via a different split -- the existing id is reused and
     a merge is still recorded, so len(merges) may exceed V - 257).
     Apply the merge in every word left-to-right, non-overlapping
     ("aaaa" with (a,a) -> "aa aa", "aaa" -> "aa a"), update counts.
  5. merges.txt lists merges in creation order (= rank order used at
     encode time).
  This script re-implements 1-4 in pure Python (`reference_train`) and checks
  that it reproduces HF's vocab and merges exactly for every size it trains.
"""
import argparse
import base64
import heapq
import json
import os
import sys
from collections import defaultdict

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CORPUS = os.path.join(ROOT, "data", "devils-dictionary", "devils_dictionary.jsonl")
OUT_DIR = os.path.join(ROOT, "Tests", "DataTests", "Fixtures", "tokenizer")
SPECIAL = "<|endoftext|>"
MIN_FREQUENCY = 0
FIXTURE_VOCAB = 2048
COMPRESSION_VOCABS = [1024, 4096, 8192]
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


# --------------------------------------------------------------------------
# GPT-2 byte <-> unicode map (same as GPT-2's encoder.py bytes_to_unicode)
# --------------------------------------------------------------------------
def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE_ENCODER = bytes_to_unicode()
BYTE_DECODER = {v: k for k, v in BYTE_ENCODER.items()}


def token_bytes(tok: str) -> bytes:
    return bytes(BYTE_DECODER[c] for c in tok)


def load_corpus(path=CORPUS):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def new_tokenizer() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def train_hf(docs, vocab_size, min_frequency=MIN_FREQUENCY) -> Tokenizer:
    tok = new_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[SPECIAL],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(docs, trainer=trainer)
    return tok


def hf_vocab_merges(tok: Tokenizer):
    d = json.loads(tok.to_str())
    merges = d["model"]["merges"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in merges]
    return d["model"]["vocab"], merges


# --------------------------------------------------------------------------
# Pure-Python mirror of HF's BpeTrainer (see module docstring)
# --------------------------------------------------------------------------
def reference_train(docs, vocab_size, min_frequency=MIN_FREQUENCY):
    """Returns (vocab: str->id, merges: [(left, right)]) exactly like HF.

    Max-heap of (count, pair) with ties -> smallest (left_id, right_id); entries
    are validated lazily on pop: a stale count is re-pushed with the current
    count (what HF does).  Only pairs containing the new token can gain
    count, so only those are pushed after a merge.
    """
    pt = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    wc = defaultdict(int)
    for d in docs:
        for w, _ in pt.pre_tokenize_str(d):
            wc[w] += 1
    id2w = [SPECIAL]
    alphabet = set(pre_tokenizers.ByteLevel.alphabet())
    for w in wc:
        alphabet.update(w)
    id2w += sorted(alphabet, key=ord)
    w2id = {w: i for i, w in enumerate(id2w)}
    words = [[w2id[c] for c in w] for w in wc]
    counts = list(wc.values())
    pair_count = defaultdict(int)
    where = defaultdict(set)
    for i, w in enumerate(words):
        for p in zip(w, w[1:]):
            pair_count[p] += counts[i]
            where[p].add(i)
    heap = [(-c, p) for p, c in pair_count.items() if c > 0]
    heapq.heapify(heap)
    merges = []
    while len(w2id) < vocab_size and heap:
        c, p = heapq.heappop(heap)
        cur = pair_count.get(p, 0)
        if cur != -c:
            if cur > 0:
                heapq.heappush(heap, (-cur, p))
            continue
        c = -c
        if c < 1 or c < min_frequency:
            break
        a, b = p
        new = id2w[a] + id2w[b]
        if new in w2id:
            nid = w2id[new]
        else:
            nid = len(id2w)
            id2w.append(new)
            w2id[new] = nid
        merges.append((id2w[a], id2w[b]))
        new_pairs = set()
        for i in where.pop(p, ()):
            w = words[i]
            out, k, hit = [], 0, False
            while k < len(w):
                if k + 1 < len(w) and w[k] == a and w[k + 1] == b:
                    out.append(nid)
                    k += 2
                    hit = True
                else:
                    out.append(w[k])
                    k += 1
            if not hit:
                continue
            for q in zip(w, w[1:]):
                pair_count[q] -= counts[i]
            for q in zip(out, out[1:]):
                pair_count[q] += counts[i]
                if nid in q:
                    new_pairs.add(q)
                where[q].add(i)
            words[i] = out
        pair_count.pop(p, None)
        for q in new_pairs:
            if pair_count[q] > 0:
                heapq.heappush(heap, (-pair_count[q], q))
    return w2id, merges


# --------------------------------------------------------------------------
# Hard texts
# --------------------------------------------------------------------------
HARD_TEXTS = [
    "",
    " ",
    "Hello world",
    "Hello, world! How's it going?",
    "I'm sure you'll see they've said we'd go; it's John's, don't, they're",
    "IT'S JOHN'S DOG. DON'T! WE'LL, THEY'RE, I'M, I'D, YOU'VE",
    "It’s John’s dog, don’t — we’ll see ‘quoted’ “double”",
    "'s 't 're 've 'm 'll 'd ''s '''t 'S 'LL x'sy dogs's",
    "   leading spaces",
    "trailing spaces   ",
    "multiple     spaces between   words",
    "tabs\tand\t\tmore\ttabs\t",
    "line one\nline two\n\nline four\n",
    "windows\r\nline\r\nendings\r\n\r\n",
    "space before newline \nnext  \n  indented\n \n",
    "\n",
    "\n\n\n",
    "   \t \n  mixed whitespace only  ",
    "digits 0 7 42 123 4567 89012345678901234567890 3.14159 1,000,000 2024-01-15 4th 100km",
    "12345678901234567890123456789012345678901234567890",
    "Café naïve résumé Zoë façade Ångström",
    "Cafe\u0301 nai\u0308ve re\u0301sume\u0301 A\u030angstro\u0308m",
    "\u0301 combining mark first",
    "日本語のテキストと中文文本，한국어 텍스트。",
    "مرحبا بالعالم، كيف حالك؟",
    "नमस्ते दुनिया, आप कैसे हैं?",
    "Привет мир! Γειά σου Κόσμε. สวัสดีครับ",
    "I ❤️ Swift 🚀🔥 and 😀😃😄",
    "👨\u200d👩\u200d👧\u200d👦 family, 👩🏽\u200d💻 coder, 🏳️\u200d🌈",
    "🇺🇸🇬🇧🇯🇵 flags 🇩🇪",
    "func add(_ a: Int, _ b: Int) -> Int {\n    return a + b\n}\n",
    "def f(x):\n\tif x >= 10:\n\t\treturn x**2  # square\n\treturn None\n",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }",
    "https://example.com/path/to/page?query=a%20b&x=1#frag and mailto:someone@example.org",
    "Hello<|endoftext|>World",
    "end. <|endoftext|> Start",
    "<|endoftext|>",
    "<|endoftext|><|endoftext|>",
    "a <|endoftext|>\n\nb  <|endoftext|>",
    "almost special: <|endoftext| <endoftext|> <|endoftext |> <|ENDOFTEXT|>",
    "Pneumonoultramicroscopicsilicovolcanoconiosis " + "supercalifragilisticexpialidocious" * 8,
    "a" * 300,
    "Hello世界مرحبا123abc Ünïcödé😀mixed",
    "!!!??? ... --- *** ((())) ==== ~~~ ``` ''' \"\"\"",
    "ctrl\x00\x01\x07\x1b[0m\x7f nbsp\u00a0here zwsp\u200bthere bom\ufeffx",
    "ideographic\u3000space line\u2028separator para\u2029sep nel\u0085x",
    "ABASEMENT, n.  A decent and customary mental attitude in the presence\nof wealth of power.",
    "    Poor Isabella's Dead, whose abdication\n    Set all tongues wagging in the Spanish nation.\n",
]


def pieces_of(tok: Tokenizer, text: str):
    """Pre-tokenizer split after special tokens are split out, as Unicode text."""
    out = []
    parts = text.split(SPECIAL)
    for k, part in enumerate(parts):
        if part:
            for p, _ in tok.pre_tokenizer.pre_tokenize_str(part):
                out.append(token_bytes(p).decode("utf-8"))
        if k + 1 < len(parts):
            out.append(SPECIAL)
    return out


def decode_cases(tok: Tokenizer):
    vocab = tok.get_vocab()
    inv = {i: t for t, i in vocab.items()}

    def bid(b):  # id of the single-byte token for byte b
        return vocab[BYTE_ENCODER[b]]

    seqs = [
        [bid(0xE2)],                                  # lone lead byte
        [bid(0xE2), bid(0x82)],                       # truncated 3-byte seq
        [bid(0xE2), bid(0x82), bid(0xAC)],            # complete: '€'
        [bid(0xE2), bid(0x82), bid(ord("A"))],        # truncated then ASCII
        [bid(0x80)],                                  # lone continuation
        [bid(0x80), bid(0x80), bid(0x80)],            # 3 continuations
        [bid(0xFF)],                                  # never-valid byte
        [bid(0xC0), bid(0xAF)],                       # overlong '/'
        [bid(0xED), bid(0xA0), bid(0x80)],            # UTF-16 surrogate D800
        [bid(0xF0), bid(0x9F), bid(0x98)],            # truncated 4-byte emoji
        [bid(0xF0), bid(0x9F), bid(0x98), bid(0x80)], # '😀'
        [bid(0xF4), bid(0x90), bid(0x80), bid(0x80)], # > U+10FFFF
        [bid(ord("a")), bid(0xC3), bid(ord("b"))],    # invalid in the middle
        [bid(0xC3)] + tok.encode("é").ids,            # lone lead + valid 2-byte
        tok.encode("Hello world").ids,
        tok.encode(" the Devil's Dictionary").ids,
        [vocab[SPECIAL]],
        tok.encode("a<|endoftext|>b").ids,
        [],
    ]
    cases = []
    for ids in seqs:
        raw = b"".join(token_bytes(inv[i]) if inv[i] != SPECIAL else SPECIAL.encode() for i in ids)
        cases.append({
            "ids": ids,
            "text": tok.decode(ids),  # skip_special_tokens=True (HF default)
            "text_keep_special": tok.decode(ids, skip_special_tokens=False),
            "bytes_hex": raw.hex(),
        })
    return cases


def encode_fixture(tok: Tokenizer, texts):
    out = []
    for t in texts:
        e = tok.encode(t)
        out.append({"text": t, "ids": e.ids, "tokens": e.tokens, "pieces": pieces_of(tok, t)})
    return out


# --------------------------------------------------------------------------
# Real GPT-2 vocabulary (optional)
# --------------------------------------------------------------------------
def find_gpt2_tiktoken(explicit=None):
    """The GPT-2 ranks file `gpt2.tiktoken` ships inside the openai-whisper sdist
    (MIT licence), e.g.:
        cd /tmp && pip download --no-deps openai-whisper==20250625
        tar xzf openai_whisper-20250625.tar.gz
        -> openai_whisper-20250625/whisper/assets/gpt2.tiktoken
    (tiktoken's own "gpt2" encoding downloads from the network; this doesn't.)
    gpt2_from_tiktoken() rebuilds merges by BPE-splitting each token with
    lower-ranked tokens; the resulting merges.txt is 456,318 bytes / 50,000
    merges, the size of OpenAI's original, and HF + tiktoken agree on all
    hard texts."""
    cands = [explicit] if explicit else []
    cands += ["/tmp/whl/openai_whisper-20250625/whisper/assets/gpt2.tiktoken",
              "/tmp/openai_whisper-20250625/whisper/assets/gpt2.tiktoken"]
    try:
        import whisper  # noqa: F401
        cands.append(os.path.join(os.path.dirname(whisper.__file__), "assets", "gpt2.tiktoken"))
    except Exception:
        pass
    for c in cands:
        if c and os.path.exists(c):
            return c
    return None


def gpt2_from_tiktoken(path):
    ranks = {}
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                tok, r = line.split()
                ranks[base64.b64decode(tok)] = int(r)
    assert len(ranks) == 50256
    # merges: split each multi-byte token by BPE with lower-ranked tokens only
    def bpe_split(tb, max_rank):
        parts = [bytes([b]) for b in tb]
        while True:
            best = None
            for i in range(len(parts) - 1):
                r = ranks.get(parts[i] + parts[i + 1])
                if r is not None and r < max_rank and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            i = best[1]
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        return parts

    enc = lambda b: "".join(BYTE_ENCODER[x] for x in b)
    merges = []
    for tb, r in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(tb) == 1:
            continue
        parts = bpe_split(tb, r)
        assert len(parts) == 2, (tb, parts)
        merges.append((enc(parts[0]), enc(parts[1])))
    vocab = {enc(tb): r for tb, r in ranks.items()}
    vocab[SPECIAL] = 50256
    return ranks, vocab, merges


def gpt2_fixture(path, out_dir):
    ranks, vocab, merges = gpt2_from_tiktoken(path)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([SPECIAL])
    # sanity: well-known GPT-2 ids
    assert tok.encode("Hello world").ids == [15496, 995], tok.encode("Hello world").ids
    assert tok.encode(" the").ids == [262]
    enc = encode_fixture(tok, HARD_TEXTS)
    try:
        import tiktoken
        tt = tiktoken.Encoding("gpt2_local", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                               special_tokens={SPECIAL: 50256})
        for e in enc:
            assert tt.encode(e["text"], allowed_special="all") == e["ids"], e["text"]
        checked = f"tiktoken {tiktoken.__version__} agrees on all texts"
    except ImportError:
        checked = "tiktoken not installed; HF only"
    with open(os.path.join(out_dir, "hard_texts_gpt2.json"), "w", encoding="utf-8") as f:
        json.dump({"tokenizer": "GPT-2 (r50k) vocabulary from openai-whisper's assets/gpt2.tiktoken, "
                   "encoded with HF tokenizers; " + checked,
                   "encode": [{"text": e["text"], "ids": e["ids"]} for e in enc]},
                  f, ensure_ascii=False, indent=1)
        f.write("\n")
    return checked


# --------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gpt2-tiktoken", help="path to gpt2.tiktoken (optional)")
    ap.add_argument("--write-gpt2-vocab", metavar="DIR",
                    help="also write the real GPT-2 vocab.json + merges.txt (from gpt2.tiktoken) "
                         "to DIR (~1.5 MB; not a fixture)")
    ap.add_argument("--skip-reference-trainer", action="store_true",
                    help="don't run the slow pure-Python trainer cross-check")
    args = ap.parse_args()
    os.makedirs(OUT_DIR, exist_ok=True)
    docs = load_corpus()
    print(f"corpus: {len(docs)} docs, {sum(len(d.encode()) for d in docs)} bytes", file=sys.stderr)

    def check_against_reference(tok, v):
        if args.skip_reference_trainer:
            return None
        vocab, merges = hf_vocab_merges(tok)
        rv, rm = reference_train(docs, v)
        ok = (rv == vocab and [tuple(m) for m in rm] == [tuple(m) for m in merges])
        print(f"  reference trainer vs HF at vocab {v}: {'MATCH' if ok else 'MISMATCH'}", file=sys.stderr)
        if not ok:
            for k, (x, y) in enumerate(zip(rm, merges)):
                if tuple(x) != tuple(y):
                    print(f"  first differing merge #{k}: ref {x} hf {y}", file=sys.stderr)
                    break
        return ok

    # (a) fixture tokenizer
    tok = train_hf(docs, FIXTURE_VOCAB)
    assert tok.get_vocab_size() == FIXTURE_VOCAB
    tok.save(os.path.join(OUT_DIR, "tokenizer.json"))
    tok.model.save(OUT_DIR)  # vocab.json + merges.txt ("#version: 0.2" header)
    with open(os.path.join(OUT_DIR, "merges.txt"), encoding="utf-8") as f:
        assert f.readline().startswith("#version: 0.2")
    # reload from vocab.json/merges.txt must behave identically
    tok2 = new_tokenizer()
    tok2.model = models.BPE.from_file(os.path.join(OUT_DIR, "vocab.json"), os.path.join(OUT_DIR, "merges.txt"))
    tok2.add_special_tokens([SPECIAL])
    ref_match = {FIXTURE_VOCAB: check_against_reference(tok, FIXTURE_VOCAB)}

    # (b) hard texts + decode cases
    tok = Tokenizer.from_file(os.path.join(OUT_DIR, "tokenizer.json"))
    enc = encode_fixture(tok, HARD_TEXTS)
    for e in enc:
        assert tok2.encode(e["text"]).ids == e["ids"]
        assert tok.decode(e["ids"], skip_special_tokens=False) == e["text"], e["text"]
    with open(os.path.join(OUT_DIR, "hard_texts.json"), "w", encoding="utf-8") as f:
        json.dump({"tokenizer": "tokenizer.json (ByteLevel BPE, vocab 2048, Devil's Dictionary); "
                   "ids = Tokenizer.encode(text).ids; pieces = special-token split then pre-tokenizer; "
                   "decode 'text' = decode(ids) (skip_special_tokens=True, HF default)",
                   "encode": enc, "decode": decode_cases(tok)}, f, ensure_ascii=False, indent=1)
        f.write("\n")

    # (c) real GPT-2 ids, if the vocabulary is available offline
    p = find_gpt2_tiktoken(args.gpt2_tiktoken)
    if p:
        print("gpt2:", gpt2_fixture(p, OUT_DIR), file=sys.stderr)
        if args.write_gpt2_vocab:
            _, vocab, merges = gpt2_from_tiktoken(p)
            os.makedirs(args.write_gpt2_vocab, exist_ok=True)
            with open(os.path.join(args.write_gpt2_vocab, "vocab.json"), "w", encoding="utf-8") as f:
                json.dump(vocab, f, ensure_ascii=False)
            with open(os.path.join(args.write_gpt2_vocab, "merges.txt"), "w", encoding="utf-8") as f:
                f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    else:
        print("gpt2.tiktoken not found; skipping hard_texts_gpt2.json", file=sys.stderr)

    # (d) compression
    rows = []
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    for v in COMPRESSION_VOCABS:
        t = train_hf(docs, v)
        ntok = sum(len(e.ids) for e in t.encode_batch(docs))
        vocab, merges = hf_vocab_merges(t)
        rows.append({"vocab_size": v, "tokens": ntok, "bytes": nbytes,
                     "tokens_per_byte": round(ntok / nbytes, 6),
                     "final_vocab_size": t.get_vocab_size(), "merges": len(merges),
                     "min_frequency": MIN_FREQUENCY, "documents": len(docs)})
        ref_match[v] = check_against_reference(t, v)
        print(rows[-1], file=sys.stderr)
    with open(os.path.join(OUT_DIR, "trainer_compression.json"), "w", encoding="utf-8") as f:
        json.dump(rows, f, indent=1)
        f.write("\n")
    print("reference trainer matches:", ref_match, file=sys.stderr)


if __name__ == "__main__":
    main()

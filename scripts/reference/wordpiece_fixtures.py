#!/usr/bin/env python3
"""Fixtures for BERT's WordPiece tokenizer (Tests/DataTests/Fixtures/wordpiece).

Trains a small WordPiece vocabulary (Hugging Face tokenizers' BertWordPieceTokenizer) on the bundled
corpus and the hard texts below, cased and lower-cased, writes each as vocab.txt, and encodes the
hard texts with two references: Google BERT's tokenization.py FullTokenizer, which Megatron-LM
vendors as bert_tokenization.py for BertWordPieceLowerCase / BertWordPieceCase (taken from PyPI's
bert-tensorflow 1.0.4; its only TensorFlow use, reading the vocabulary file, is stubbed), and
Hugging Face tokenizers' BertTokenizerFast. cases.json holds each text's ids from both (without
[CLS]/[SEP]). The two differ where the text spells a special token ("[CLS]"): Hugging Face matches
it as that token, Google's splits it as punctuation and letters.

    pip download --no-deps -d /tmp/bert bert-tensorflow==1.0.4 && unzip -o /tmp/bert/*.whl -d /tmp/bert
    python3 scripts/reference/wordpiece_fixtures.py /tmp/bert
"""
import json
import os
import sys
import types

from tokenizers import BertWordPieceTokenizer
from transformers import BertTokenizerFast

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
OUT = os.path.join(ROOT, "Tests", "DataTests", "Fixtures", "wordpiece")
CORPUS = os.path.join(ROOT, "data", "devils-dictionary", "devils_dictionary.jsonl")

TEXTS = [
    "Hello, World! The Devil's Dictionary (1911).",
    "ÆSTHETE, n. A café naïve façade — résumé coöperate élan.",
    "Ångström über Straße ﬁnancial Œuvre İstanbul ΣΊΣΥΦΟΣ ὀδυσσεύς",
    "中文字符和日本語のテキスト 한국어 mixed with English",
    "emoji 🎩🤖 and symbols ™ © ® ° ± × ÷ € £ ¥ and math ∑∫√∞",
    "tabs\tand\nnewlines\r\nand\u00a0nbsp\u2003em-space\u200bzero-width",
    "control\u0001chars\u0007here\ufffdand\u0000nul",
    "supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "x" * 101 + " " + "y" * 100,
    "##hash ## #tag [CLS] [SEP] [MASK] [PAD] [UNK] <s> </s>",
    "numbers 3.14159 1,000,000 2024-11-30 12:34:56 0x1F",
    "don't won't it's rock'n'roll O'Neil's",
    "punctuation!!! ??? ... --- ___ ((( ))) [[[ ]]] {{{ }}} \"quoted\" 'single' `back`",
    "Combining: e\u0301 a\u0308 n\u0303 and precomposed: é ä ñ",
    "",
    "   ",
    "A" * 30 + "b" * 30,
    "LOVE, n. A temporary insanity curable by marriage.",
]


def google_tokenization(folder):
    """bert/tokenization.py from the unpacked bert-tensorflow wheel, with tf.gfile.GFile as open."""
    gfile = types.SimpleNamespace(GFile=open)
    v1 = types.ModuleType("tensorflow.compat.v1")
    v1.gfile = gfile
    compat = types.ModuleType("tensorflow.compat")
    compat.v1 = v1
    tensorflow = types.ModuleType("tensorflow")
    tensorflow.compat = compat
    sys.modules.update({"tensorflow": tensorflow, "tensorflow.compat": compat, "tensorflow.compat.v1": v1})
    sys.path.insert(0, folder)
    from bert import tokenization
    tokenization.FLAGS.mark_as_parsed()  # --preserve_unused_tokens keeps its default (off), as Megatron's copy has none
    return tokenization


def main():
    google = google_tokenization(sys.argv[1] if len(sys.argv) > 1 else "/tmp/bert")
    texts = [json.loads(line)["text"] for line in open(CORPUS)]
    cases = []
    for name, lower in (("uncased", True), ("cased", False)):
        folder = os.path.join(OUT, name)
        os.makedirs(folder, exist_ok=True)
        trainer = BertWordPieceTokenizer(lowercase=lower, strip_accents=None, clean_text=True, handle_chinese_chars=True)
        # The hard texts join the corpus (three times: above min_frequency) so that their characters and some
        # of their words are in the vocabulary, and splitting, not only [UNK], is tested.
        trainer.train_from_iterator(texts + TEXTS * 3, vocab_size=2500, min_frequency=2,
                                    special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
        vocab = os.path.join(folder, "vocab.txt")
        trainer.save_model(folder)
        slow = google.FullTokenizer(vocab, do_lower_case=lower)
        fast = BertTokenizerFast(vocab, do_lower_case=lower)
        for text in TEXTS:
            cases.append({
                "vocab": name, "text": text,
                "megatron": slow.convert_tokens_to_ids(slow.tokenize(text)),
                "huggingface": fast(text, add_special_tokens=False)["input_ids"],
                "decoded": fast.decode(fast(text, add_special_tokens=False)["input_ids"]),
            })
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(cases, f, ensure_ascii=False, indent=1)
    differ = [c for c in cases if c["megatron"] != c["huggingface"]]
    print(f"{len(cases)} cases, {len(differ)} where the two references differ")
    for c in differ:
        print(" ", c["vocab"], repr(c["text"][:60]))


if __name__ == "__main__":
    main()

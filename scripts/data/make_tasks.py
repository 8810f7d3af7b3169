#!/usr/bin/env python3
"""Builds the bundled evaluation tasks from the bundled corpus (The Devil's Dictionary, public
domain), into data/tasks:

  devils_lambada.jsonl       a LAMBADA-style last-word task in lambada_openai's field ("text"):
                             the first sentence of a definition, headword included, without its
                             final punctuation; the model must predict its last word
  devils_wikitext.jsonl      pages for the rolling-perplexity task (`--task wikitext`, field
                             "page"): runs of whole entries spaced out as WikiText-103 distributes
                             text (punctuation apart, @-@ hyphens, " = TITLE = " headings)
  devils_definitions.jsonl   a multiple-choice task in the generic format ("context", "choices",
                             "label"): a headword as the corpus writes it ("ABASEMENT, n.") and
                             the first sentences of four definitions, one of them its own

Both draw on text `megatron train` sees in the demo (the demo trains on 95% of the corpus): they
measure how much of the corpus the model has taken in, not generalisation.

    python3 scripts/data/make_tasks.py
"""
import json
import os
import random
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "data/devils-dictionary/devils_dictionary.jsonl")
OUT = os.path.join(ROOT, "data/tasks")
ENTRY = re.compile(r"^([A-Z][A-Z' -]+), ([a-z.]+)\s+(.*)$", re.S)


def entries():
    """(headword line, first sentence of the definition) of every entry."""
    found = []
    with open(CORPUS) as file:
        for line in file:
            text = " ".join(json.loads(line)["text"].split("\n\n")[0].split())
            match = ENTRY.match(text)
            if not match:
                continue
            sentence = re.split(r"(?<=[.!?])\s", match.group(3))[0].strip()
            if 5 <= len(sentence.split()) <= 30:
                found.append((f"{match.group(1)}, {match.group(2)}", sentence))
    return found


def wikitext_page(entries_text):
    """Entries as one WikiText-103 page: the first headword as the title, each entry a paragraph
    with its punctuation spaced out and its hyphens written @-@."""
    def spaced(text):
        text = re.sub(r"(\w)-(\w)", r"\1 @-@ \2", text)
        text = re.sub(r"'s\b", " 's", text)
        return " ".join(re.sub(r'([,.;:!?()\[\]"])', r" \1 ", text).split())
    title = entries_text[0].split(",")[0].title()
    lines = [f" = {title} = ", " "]
    for text in entries_text:
        lines += [" " + spaced(text) + " ", " "]
    return "\n".join(lines) + "\n"


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(1881)
    found = entries()
    rng.shuffle(found)
    with open(os.path.join(OUT, "devils_lambada.jsonl"), "w") as file:
        for headword, sentence in found[:200]:
            text = f"{headword} {sentence}".rstrip(".!?;:,")
            if not text.split(" ")[-1].isalpha():
                continue
            file.write(json.dumps({"text": text}) + "\n")
    with open(os.path.join(OUT, "devils_definitions.jsonl"), "w") as file:
        for index, (headword, sentence) in enumerate(found[:200]):
            others = rng.sample([s for h, s in found if h != headword], 3)
            label = index % 4
            choices = others[:label] + [sentence] + others[label:]
            file.write(json.dumps({"context": headword, "choices": choices, "label": label}) + "\n")
    with open(CORPUS) as file:
        texts = [" ".join(json.loads(line)["text"].split()) for line in file]
    pages = random.Random(1911)
    with open(os.path.join(OUT, "devils_wikitext.jsonl"), "w") as file:
        for _ in range(20):
            start = pages.randrange(len(texts) - 6)
            file.write(json.dumps({"page": wikitext_page(texts[start:start + 2 + pages.randrange(5)])}) + "\n")
    print(f"{len(found)} entries; wrote {OUT}/devils_lambada.jsonl, devils_definitions.jsonl and devils_wikitext.jsonl")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes small task files in the public datasets' JSON Lines fields for the `megatron finetune`
tests (nothing can be downloaded here, so the texts are made from the bundled corpus's
headwords with templates whose labels a model can learn):

- mnli_{train,valid}.jsonl   (glue/mnli: premise, hypothesis, label 0/1/2; some GLUE-style gold_label words)
- qqp_{train,valid}.jsonl    (glue/qqp: question1, question2, label)
- boolq_{train,valid}.jsonl  (boolq: question, passage, answer true/false; super_glue's integer label in half)
- race_{train,valid}.jsonl   (race: article, question, options, answer; one line in the original
                              files' shape with questions/options/answers lists)

Run: python3 scripts/reference/finetune_task_fixtures.py Tests/FinetuningTests/Fixtures/tasks
"""
import json
import os
import random
import sys


def headwords(corpus, count):
    words = []
    with open(corpus) as f:
        for line in f:
            text = json.loads(line)["text"]
            word = text.split(",")[0].strip().lower()
            if word.isalpha() and word not in words:
                words.append(word)
            if len(words) == count:
                break
    return words


def write(path, rows):
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def main(directory):
    os.makedirs(directory, exist_ok=True)
    rng = random.Random(20261130)
    words = headwords("data/devils-dictionary/devils_dictionary.jsonl", 120)
    for split, size in [("train", 24), ("valid", 12)]:
        mnli, qqp, boolq, race = [], [], [], []
        for i in range(size):
            a, b = rng.sample(words, 2)
            kind = i % 3
            premise = f"the {a} is a kind of {b}."
            hypothesis = [premise, f"the {a} is not a kind of {b}.", f"the {b} is near the {a}."][kind]
            row = {"premise": premise, "hypothesis": hypothesis, "label": [0, 2, 1][kind], "idx": i}
            if i % 5 == 4:
                row = {"premise": premise, "hypothesis": hypothesis,
                       "gold_label": ["entailment", "contradiction", "neutral"][kind]}
            mnli.append(row)
            same = i % 2 == 0
            qqp.append({"question1": f"what is a {a}?", "question2": f"what is a {a}?" if same else f"what is a {b}?",
                        "label": int(same), "idx": i})
            yes = i % 2 == 1
            passage = f"every {a} is {'always' if yes else 'never'} a {b}."
            question = f"is every {a} a {b}"
            boolq.append({"question": question, "passage": passage, "answer": yes} if i % 2 == 0
                         else {"question": question, "passage": passage, "label": int(yes), "idx": i})
            options = rng.sample(words, 4)
            answer = i % 4
            article = f"the {options[answer]} was kind. the others were not."
            race.append({"example_id": f"{split}{i}", "article": article, "question": "who was _ ?",
                         "options": options, "answer": "ABCD"[answer]})
        # One line as the original RACE files have it: an article with its questions.
        options = [rng.sample(words, 4) for _ in range(2)]
        race.append({"article": f"the {options[0][1]} was kind. the {options[1][3]} was kind too.",
                     "questions": ["who was kind?", "which one was _ too?"], "options": options, "answers": ["B", "D"]})
        write(os.path.join(directory, f"mnli_{split}.jsonl"), mnli)
        write(os.path.join(directory, f"qqp_{split}.jsonl"), qqp)
        write(os.path.join(directory, f"boolq_{split}.jsonl"), boolq)
        write(os.path.join(directory, f"race_{split}.jsonl"), race)
    print(f"wrote the task files of mnli, qqp, boolq and race to {directory}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/FinetuningTests/Fixtures/tasks")

#!/usr/bin/env python3
"""Fixtures for `megatron evaluate --task`: small task files in each dataset's fields, a random
Hugging Face GPT-2, and what lm-evaluation-harness 0.4.13's `hf` model makes of them.

Writes into Tests/EvaluationTests/Fixtures:
  tasks/TASK.jsonl, tasks/TASK_fewshot.jsonl  documents built from the bundled public-domain
                                              corpus (The Devil's Dictionary), in the fields of
                                              the task's Hugging Face dataset
  hf/config.json, hf/model.safetensors        GPT-2 with odd sizes (3 heads of 16, 2 layers,
                                              128 positions so that few-shot prompts are cut),
                                              vocabulary of the test tokenizer (2048), weights
                                              drawn with std 0.25 so that choices differ clearly
  expected.json                               for every task at 0 and 2 shots: lm-eval's
                                              contexts, continuations, log-likelihoods, greedy
                                              flags and its aggregate metrics

lm-eval runs each task from a YAML that includes the installed task and points it at the local
files (`dataset_path: json`); lambada_openai has only a test split, so its few-shot examples come
from the evaluated file (the evaluated document included, as lm-eval does unless the few-shot
split is named: `lambada_openai/2/excluding` names it), the others' from *_fewshot.jsonl.

    pip install lm-eval==0.4.13 transformers torch safetensors
    python3 scripts/reference/task_fixtures.py
"""
import json
import os
import random
import re
import tempfile

import lm_eval
import lm_eval.tasks
import torch
from lm_eval.models.huggingface import HFLM
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests/EvaluationTests/Fixtures")
TOKENIZER = os.path.join(ROOT, "Tests/DataTests/Fixtures/tokenizer/tokenizer.json")
CORPUS = os.path.join(ROOT, "data/devils-dictionary/devils_dictionary.jsonl")
TASKS_DIR = os.path.join(os.path.dirname(lm_eval.__file__), "tasks")
INSTALLED = {  # task -> its YAML in lm-eval, and whether it has a training split here
    "lambada_openai": ("lambada/lambada_openai.yaml", False),
    "piqa": ("piqa/piqa.yaml", True),
    "hellaswag": ("hellaswag/hellaswag.yaml", True),
    "arc_easy": ("arc/arc_easy.yaml", True),
    "boolq": ("super_glue/boolq/default.yaml", True),
    "winogrande": ("winogrande/default.yaml", True),
    "wic": ("super_glue/wic/default.yaml", True),
    "anli_r1": ("anli/anli_r1.yaml", True),
    "race": ("race/race.yaml", False),
    # HANS is not an lm-eval task: lm-eval's RTE prompt over HANS's fields (megatron's `hans`).
    "hans": ("glue/rte/default.yaml", True),
    "wikitext": ("wikitext/wikitext.yaml", False),
}
EXTRA_YAML = {
    "hans": ['doc_to_text: "{{premise}}\\nQuestion: {{hypothesis}} True or False?\\nAnswer:"'],
}
SHOTS = {"wikitext": [0]}  # a rolling task takes no examples
NEW_TASKS = ["hans", "wikitext"]  # drawn from their own generator so that the others' files stay as they were


def wikitext_style(text):
    """A sentence spaced out as WikiText distributes it: punctuation, @-@ hyphens, @,@ and @.@ in
    numbers, ' s possessives."""
    text = re.sub(r"(\d),(\d)", r"\1 @,@ \2", text)
    text = re.sub(r"(\d)\.(\d)", r"\1 @.@ \2", text)
    text = re.sub(r"(\w)-(\w)", r"\1 @-@ \2", text)
    text = re.sub(r"'s\b", " 's", text)
    text = re.sub(r'([,.;:!?()\[\]"])', r" \1 ", text)
    return " ".join(text.split())


def wikitext_page(rng, pick, index):
    """A WikiText-103 style page (wikitext_document_level's `page`): a title, a section heading,
    paragraphs of corpus sentences, and every construct the detokenizer rewrites."""
    title = pick().split()[0].strip(".,;:!?\"'")
    lines = [f" = {title} = ", ""]
    for section in range(1 + index % 3):
        if section:
            lines += [f" = = Part {section} = = ", ""]
            if index % 2:
                lines += [f" = = = Notes on {title} = = = ", ""]
        sentences = [wikitext_style(pick()) for _ in range(2 + rng.randrange(5))]
        extras = [f"It weighs 1 @,@ 250 kg ( about 2 @.@ 5 tons ) at 40 \u00b0 C .",
                  "The writers ' views , in [ brackets ] and { braces } , vary .",
                  'He said " so it goes " and left ; a \' quoted \' word , N times !',
                  "See /' 7/ and the caf\u00e9 's menu ?", "Dogs ' tails wag .\n more"]
        sentences.insert(rng.randrange(len(sentences) + 1), extras[(index + section) % len(extras)])
        lines += [" " + " ".join(sentences) + " ", ""]
    return "\n".join(lines) + "\n"


def sentences():
    """Sentences of the corpus with 6 to 40 words."""
    found = []
    with open(CORPUS) as file:
        for line in file:
            text = json.loads(line)["text"]
            for sentence in re.split(r"(?<=[.!?])\s+", text.replace("\n", " ")):
                words = sentence.split()
                if 6 <= len(words) <= 40 and all(w.isprintable() for w in words):
                    found.append(" ".join(words))
    return found


rng_for_pages = random.Random(1701)


def documents(task, pick, count):
    """`count` documents of `task` in its dataset's fields, from the corpus's sentences."""
    docs = []
    for index in range(count):
        a, b, c, d = pick(), pick(), pick(), pick()
        words = a.split()
        if task == "lambada_openai":
            docs.append({"text": a})
        elif task == "piqa":
            docs.append({"goal": a, "sol1": b, "sol2": c, "label": index % 2})
        elif task == "hellaswag":
            endings = [b, c, d + " [title] " + words[0], "[header] " + a[:30]]
            docs.append({"ind": index, "activity_label": words[0].strip(".,;:"), "ctx_a": a,
                         "ctx_b": b.split()[0].lower() + " " + " ".join(b.split()[1:4]).upper(), "ctx": a,
                         "endings": endings, "source_id": "corpus", "split": "val", "split_type": "indomain",
                         "label": str(index % 4)})
        elif task == "arc_easy":
            labels = ["A", "B", "C", "D"] if index % 3 else ["1", "2", "3"]
            texts = [b, c, d, a][: len(labels)]
            docs.append({"id": f"corpus/{index}", "question": a + "?", "choices": {"text": texts, "label": labels},
                         "answerKey": labels[index % len(labels)]})
        elif task == "boolq":
            docs.append({"question": b.rstrip(".!?").lower(), "passage": a + " " + c, "idx": index, "label": index % 2})
        elif task == "winogrande":
            cut = max(2, len(words) // 2)
            sentence = " ".join(words[:cut]) + " _ " + " ".join(words[cut + 1:])
            docs.append({"sentence": sentence, "option1": words[cut], "option2": b.split()[0],
                         "answer": str(1 + index % 2)})
        elif task == "wic":
            position = index % len(words)
            start = len(" ".join(words[:position])) + (1 if position else 0)
            word = words[position]
            docs.append({"word": word, "sentence1": a, "sentence2": b, "start1": start, "end1": start + len(word),
                         "start2": 0, "end2": 1, "idx": index, "label": index % 2})
        elif task == "race":
            words_b = b.split()
            problems = [
                {"question": " ".join(words_b[:-1]) + "  _  .", "answer": "B", "options": [c, words_b[-1], d, a[:20]]},
                {"question": "What does the writer think of " + words[1] + "?", "answer": "ACDB"[index % 4],
                 "options": [d, c, b, "It's \"hard\" to say"]},
                {"question": "Which is true?", "answer": "ABCD"[index % 4], "options": [a, b, c, d]},
            ][index % 2:]
            docs.append({"example_id": f"corpus{index}.txt", "article": a + " " + b + " " + c, "problems": str(problems)})
        elif task == "hans":
            docs.append({"premise": a, "hypothesis": b, "label": index % 2, "parse_premise": "", "parse_hypothesis": "",
                         "binary_parse_premise": "", "binary_parse_hypothesis": "", "heuristic": "lexical_overlap",
                         "subcase": "ln_subject/object_swap", "template": "temp1"})
        elif task == "wikitext":
            docs.append({"page": wikitext_page(rng_for_pages, pick, index)})
        elif task == "anli_r1":
            docs.append({"uid": f"corpus-{index}", "premise": a + " " + b, "hypothesis": c, "label": index % 3,
                         "reason": ""})
    return docs


def arguments(sample):
    """A logged sample's requests: (context, continuation), or (text,) for a rolling task."""
    found = sample["arguments"]
    return list(found.values()) if isinstance(found, dict) else found


def write_jsonl(path, docs):
    with open(path, "w") as file:
        for doc in docs:
            file.write(json.dumps(doc) + "\n")


def main():
    os.makedirs(os.path.join(OUT, "tasks"), exist_ok=True)
    rng = random.Random(2024)
    pool = sentences()
    pick = lambda: rng.choice(pool)  # noqa: E731
    def write_task(task, pick):
        write_jsonl(os.path.join(OUT, "tasks", f"{task}.jsonl"), documents(task, pick, 8))
        if INSTALLED[task][1]:
            write_jsonl(os.path.join(OUT, "tasks", f"{task}_fewshot.jsonl"), documents(task, pick, 6))

    for task in INSTALLED:
        if task not in NEW_TASKS:
            write_task(task, pick)
    # A multiple_choice file in the generic format (scored by megatron only: lm-eval has no such task).
    write_jsonl(os.path.join(OUT, "tasks", "multiple_choice.jsonl"),
                [{"context": pick(), "choices": [pick(), pick(), pick()], "label": i % 3} for i in range(6)])
    rng = random.Random(2025)
    for task in NEW_TASKS:
        write_task(task, pick)

    torch.manual_seed(7)
    config = GPT2Config(vocab_size=2048, n_positions=128, n_embd=48, n_layer=2, n_head=3,
                        activation_function="gelu_new", resid_pdrop=0, embd_pdrop=0, attn_pdrop=0,
                        bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.dim() > 1:
                parameter.normal_(0, 0.25)
            elif "ln" in name and "weight" in name:
                parameter.normal_(1, 0.1)
            else:
                parameter.normal_(0, 0.05)
    model.eval()
    model.save_pretrained(os.path.join(OUT, "hf"), safe_serialization=True)
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=TOKENIZER, eos_token="<|endoftext|>")
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=1, max_length=128)

    expected = {}
    with tempfile.TemporaryDirectory() as configs:
        for task, (yaml, has_train) in INSTALLED.items():
            data = {"test": os.path.join(OUT, "tasks", f"{task}.jsonl")}
            if has_train:
                data["train"] = os.path.join(OUT, "tasks", f"{task}_fewshot.jsonl")
            lines = [f"include: {os.path.join(TASKS_DIR, yaml)}", f"task: local_{task}", "tag: []",
                     "dataset_path: json", "dataset_name: null",
                     f"dataset_kwargs:\n  data_files: {json.dumps(data)}",
                     f"training_split: {'train' if has_train else 'null'}", "validation_split: null", "test_split: test",
                     "fewshot_split: null"] + EXTRA_YAML.get(task, [])
            with open(os.path.join(configs, f"local_{task}.yaml"), "w") as file:
                file.write("\n".join(lines) + "\n")
        manager = lm_eval.tasks.TaskManager(include_path=configs)
        for task in INSTALLED:
            for shots in SHOTS.get(task, [0, 2]):
                results = lm_eval.simple_evaluate(model=lm, tasks=[f"local_{task}"], num_fewshot=shots,
                                                  task_manager=manager, log_samples=True, fewshot_random_seed=1234,
                                                  bootstrap_iters=0)
                samples = sorted(results["samples"][f"local_{task}"], key=lambda s: s["doc_id"])
                metrics = {k.split(",")[0]: v for k, v in results["results"][f"local_{task}"].items()
                           if k.endswith(",none") and "stderr" not in k}
                expected[f"{task}/{shots}"] = {
                    "metrics": metrics,
                    "examples": [{
                        "contexts": [arg[0] if len(arg) > 1 else "" for arg in arguments(s)],
                        "continuations": [arg[-1] for arg in arguments(s)],
                        "loglikelihoods": [r[0][0] if isinstance(r[0], (list, tuple)) else r[0] for r in s["resps"]],
                        "is_greedy": [bool(r[0][1]) for r in s["resps"] if isinstance(r[0], (list, tuple))],
                    } for s in samples],
                }
                print(task, shots, metrics)
        # lm-eval leaves the evaluated document out of its own examples only when the few-shot
        # split is named and is the test split.
        with open(os.path.join(configs, "local_lambada_excluding.yaml"), "w") as file:
            file.write(open(os.path.join(configs, "local_lambada_openai.yaml")).read()
                       .replace("task: local_lambada_openai", "task: local_lambada_excluding")
                       .replace("fewshot_split: null", "fewshot_split: test"))
        manager = lm_eval.tasks.TaskManager(include_path=configs)
        results = lm_eval.simple_evaluate(model=lm, tasks=["local_lambada_excluding"], num_fewshot=2,
                                          task_manager=manager, log_samples=True, fewshot_random_seed=1234,
                                          bootstrap_iters=0)
        samples = sorted(results["samples"]["local_lambada_excluding"], key=lambda s: s["doc_id"])
        expected["lambada_openai/2/excluding"] = {
            "metrics": {k.split(",")[0]: v for k, v in results["results"]["local_lambada_excluding"].items()
                        if k.endswith(",none") and "stderr" not in k},
            "examples": [{"contexts": [a[0] for a in s["arguments"]], "continuations": [a[1] for a in s["arguments"]],
                          "loglikelihoods": [r[0][0] for r in s["resps"]], "is_greedy": [bool(r[0][1]) for r in s["resps"]]}
                         for s in samples],
        }
    with open(os.path.join(OUT, "expected.json"), "w") as file:
        json.dump(expected, file, indent=1)


if __name__ == "__main__":
    main()

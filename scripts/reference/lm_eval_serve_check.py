#!/usr/bin/env python3
"""End to end: lm-evaluation-harness's `local-completions` model against `megatron serve` gives the
accuracies `megatron evaluate --task` gives on the same checkpoint and task files.

Converts the evaluation fixtures' GPT-2 (Tests/EvaluationTests/Fixtures/hf) to a checkpoint,
starts `megatron serve` on a free loopback port, runs lm-eval 0.4.13 (`local-completions`, the
test tokenizer as its Hugging Face tokenizer, max_length 128) on each task's fixture file through
a local task YAML, runs `megatron evaluate --task` on the same file, and prints both.
Zero-shot on tasks whose prompts fit the model's 128 positions: lm-eval's API model cuts a
too-long request one token differently from its `hf` model (whose cut `evaluate` follows).

    swift build -c release && python3 scripts/reference/lm_eval_serve_check.py
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import lm_eval
import lm_eval.tasks

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.path.join(ROOT, ".build/release/megatron")
FIXTURES = os.path.join(ROOT, "Tests/EvaluationTests/Fixtures")
TOKENIZER = os.path.join(ROOT, "Tests/DataTests/Fixtures/tokenizer/tokenizer.json")
TASKS_DIR = os.path.join(os.path.dirname(lm_eval.__file__), "tasks")
TASKS = {"lambada_openai": "lambada/lambada_openai.yaml", "piqa": "piqa/piqa.yaml", "arc_easy": "arc/arc_easy.yaml",
         "winogrande": "winogrande/default.yaml", "anli_r1": "anli/anli_r1.yaml", "hellaswag": "hellaswag/hellaswag.yaml",
         "hans": "glue/rte/default.yaml"}
# Not wikitext: lm-eval's API model rolls windows of max_length - 2 tokens where its hf model (and
# `evaluate --task wikitext`) rolls max_length, and a window of the model's 128 positions would need
# a 129-token echoed prompt, one more than the server takes.
EXTRA_YAML = {"hans": ['doc_to_text: "{{premise}}\\nQuestion: {{hypothesis}} True or False?\\nAnswer:"']}
METRICS = ("acc", "acc_norm")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    work = tempfile.mkdtemp()
    checkpoint = os.path.join(work, "checkpoint")
    subprocess.run([BINARY, "convert", "--input-format", "hf", "--input", os.path.join(FIXTURES, "hf"),
                    "--output", checkpoint], check=True, capture_output=True)
    tokenizer_dir = os.path.join(work, "tokenizer")
    os.makedirs(tokenizer_dir)
    with open(TOKENIZER) as source, open(os.path.join(tokenizer_dir, "tokenizer.json"), "w") as target:
        target.write(source.read())
    with open(os.path.join(tokenizer_dir, "tokenizer_config.json"), "w") as file:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|endoftext|>"}, file)
    configs = os.path.join(work, "configs")
    os.makedirs(configs)
    for task, yaml in TASKS.items():
        data = {"test": os.path.join(FIXTURES, "tasks", f"{task}.jsonl")}
        with open(os.path.join(configs, f"served_{task}.yaml"), "w") as file:
            file.write("\n".join([f"include: {os.path.join(TASKS_DIR, yaml)}", f"task: served_{task}", "tag: []",
                                  "dataset_path: json", "dataset_name: null",
                                  f"dataset_kwargs:\n  data_files: {json.dumps(data)}", "training_split: null",
                                  "validation_split: null", "test_split: test", "fewshot_split: null"]
                                 + EXTRA_YAML.get(task, [])) + "\n")
    port = free_port()
    server = subprocess.Popen([BINARY, "serve", "--load", checkpoint, "--tokenizer-file", TOKENIZER, "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        manager = lm_eval.tasks.TaskManager(include_path=configs)
        results = lm_eval.simple_evaluate(
            model="local-completions",
            model_args=f"base_url=http://127.0.0.1:{port}/v1/completions,tokenizer_backend=huggingface,"
                       f"tokenizer={tokenizer_dir},max_length=128,num_concurrent=4,model=fixture",
            tasks=[f"served_{task}" for task in TASKS], task_manager=manager, bootstrap_iters=0)
        print("| task | lm-eval local-completions on megatron serve | megatron evaluate --task |")
        print("|---|---|---|")
        mismatches = 0
        for task in TASKS:
            served = {k.split(",")[0]: v for k, v in results["results"][f"served_{task}"].items()
                      if k.endswith(",none") and "stderr" not in k}
            local = json.loads(subprocess.run(
                [BINARY, "evaluate", "--load", checkpoint, "--tokenizer-file", TOKENIZER, "--task", task,
                 "--task-data", os.path.join(FIXTURES, "tasks", f"{task}.jsonl"), "--json"],
                check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
            keys = [k for k in METRICS if k in served]
            shown = lambda d: ", ".join(f"{k} {d[k]:.4f}" for k in keys)  # noqa: E731
            mismatches += sum(abs(served[k] - local[k]) > 1e-9 for k in keys)
            print(f"| {task} | {shown(served)} | {shown(local)} |")
        print("all equal" if mismatches == 0 else f"{mismatches} metrics differ")
        sys.exit(1 if mismatches else 0)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()

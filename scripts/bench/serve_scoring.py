#!/usr/bin/env python3
"""Prompt scoring through `megatron serve` as lm-evaluation-harness's `local-completions` model
asks for it: token-id prompts with `echo`, `logprobs: 1` and `max_tokens: 1` (its log-likelihood
request), `--batch` prompts per request, requests one after another. Prints the tokens scored per
second and the time per prompt, so runs with `--batch 1` (every prompt its own forward) and
`--batch 8` (prompts that arrive together share forwards) compare. `--max-tokens N` asks for N
greedy tokens after each scored prompt instead (what Megatron's `PUT /api` with `logprobs` asks).

    python3 scripts/bench/serve_scoring.py --port 5000 [--prompts 64] [--batch 8] [--min-length 16]
        [--max-length 256] [--seed 1] [--logprobs 1] [--sorted] [--max-tokens 1]
"""
import argparse
import http.client
import json
import random
import time


def post(port, body):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    connection.request("POST", "/v1/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    data = response.read().decode()
    connection.close()
    if response.status != 200:
        raise SystemExit(f"the server answered {response.status}: {data[:300]}")
    return json.loads(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8, help="prompts per request (lm-eval's batch_size)")
    parser.add_argument("--min-length", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=50000, help="token ids are drawn below this")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--logprobs", type=int, default=1, help="alternatives per position (lm-eval asks for 1)")
    parser.add_argument("--max-tokens", type=int, default=1, help="tokens generated after each prompt")
    parser.add_argument("--sorted", action="store_true",
                        help="send the prompts longest first, as lm-eval orders its requests before batching them")
    args = parser.parse_args()

    generator = random.Random(args.seed)
    prompts = [[generator.randrange(args.vocab) for _ in range(generator.randint(args.min_length, args.max_length))]
               for _ in range(args.prompts)]
    if args.sorted:
        prompts.sort(key=len, reverse=True)
    post(args.port, {"prompt": [prompts[0][:8]], "max_tokens": 1, "logprobs": 1, "echo": True})  # warm-up
    begin = time.perf_counter()
    scored = 0
    for start in range(0, len(prompts), args.batch):
        batch = prompts[start:start + args.batch]
        answer = post(args.port, {"prompt": batch, "max_tokens": args.max_tokens, "temperature": 0,
                                     "logprobs": args.logprobs, "echo": True})
        for prompt, choice in zip(batch, answer["choices"]):
            logprobs = choice["logprobs"]["token_logprobs"]
            if not len(prompt) < len(logprobs) <= len(prompt) + args.max_tokens or logprobs[0] is not None:
                raise SystemExit(f"{len(logprobs)} log-probabilities for a prompt of {len(prompt)} tokens")
            scored += len(prompt)
    wall = time.perf_counter() - begin
    order = "longest first" if args.sorted else "in random order"
    generated = f", {args.max_tokens} tokens generated after each" if args.max_tokens != 1 else ""
    print(f"{args.prompts} prompts of {args.min_length}-{args.max_length} tokens {order}{generated}, {args.batch} per request: "
          f"{scored / wall:.1f} prompt tokens/s, {1000 * wall / args.prompts:.1f} ms per prompt, {wall:.2f} s in all")


if __name__ == "__main__":
    main()

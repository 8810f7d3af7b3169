#!/usr/bin/env python3
"""Staggered arrivals at `megatron serve`: N clients, one starting every `--interval` seconds,
each asking for `--tokens` greedy tokens of its own prompt (OpenAI completions, not streamed).
Prints every client's latency, the median and worst, and the tokens per second over the whole
run. With continuous batching a client that arrives while others decode joins them at the next
step; with static batching it waits until the running batch has finished.

    python3 scripts/bench/serve_arrivals.py --port 5000 [--clients 12] [--interval 0.5] [--tokens 48]
"""
import argparse
import http.client
import json
import statistics
import threading
import time

PROMPTS = ["The Devil's Dictionary defines", "A lawyer is", "Politics is", "LOVE, n.", "In the beginning",
           "The cynic said", "War is", "Happiness is", "A critic is", "Peace, n.", "The mind is", "An egotist is"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--tokens", type=int, default=48)
    args = parser.parse_args()
    latencies = [None] * args.clients
    generated = [0] * args.clients

    def client(index):
        body = json.dumps({"prompt": PROMPTS[index % len(PROMPTS)], "max_tokens": args.tokens, "temperature": 0})
        connection = http.client.HTTPConnection("127.0.0.1", args.port, timeout=600)
        start = time.perf_counter()
        connection.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        answer = json.loads(response.read())
        latencies[index] = time.perf_counter() - start
        if response.status != 200:
            raise SystemExit(f"client {index}: {response.status} {answer}")
        generated[index] = answer["usage"]["completion_tokens"]

    threads = []
    begin = time.perf_counter()
    for index in range(args.clients):
        thread = threading.Thread(target=client, args=(index,))
        thread.start()
        threads.append(thread)
        time.sleep(args.interval)
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - begin
    print("latency per client, s:", " ".join(f"{x:.2f}" for x in latencies))
    print(f"{args.clients} clients every {args.interval} s, {args.tokens} tokens each: median latency "
          f"{statistics.median(latencies):.2f} s, worst {max(latencies):.2f} s, {sum(generated) / wall:.1f} tokens/s over {wall:.1f} s")


if __name__ == "__main__":
    main()

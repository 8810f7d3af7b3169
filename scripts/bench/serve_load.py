#!/usr/bin/env python3
"""Load test of `megatron serve` on loopback: N concurrent clients for S seconds sending a mix of
valid requests (OpenAI completions with and without echo/logprobs, streamed ones, Megatron's
PUT /api) and malformed ones (bad JSON, wrong types, out-of-range values, unknown token ids, too
long prompts). Checks every answer (valid: 200 and a well-formed body, or 503 from a full queue;
malformed: 400 or 413 with a JSON error) and that the server is still up at the end, and prints
the counts and latency percentiles. Exits non-zero on any unexpected answer, 5xx other than 503,
or a dead server.

    python3 scripts/bench/serve_load.py --port 5000 [--clients 32] [--seconds 60]
"""
import argparse
import http.client
import json
import random
import threading
import time

VALID = [
    ("POST", "/v1/completions", {"prompt": "A lawyer is", "max_tokens": 8, "temperature": 0}),
    ("POST", "/v1/completions", {"prompt": ["Love", "War"], "max_tokens": 4, "temperature": 0.8, "top_p": 0.9, "seed": 3}),
    ("POST", "/v1/completions", {"prompt": [[33, 871, 89, 266]], "max_tokens": 1, "logprobs": 1, "echo": True}),
    ("POST", "/v1/completions", {"prompt": "Politics", "max_tokens": 6, "stream": True, "temperature": 0}),
    ("PUT", "/api", {"prompts": ["A cynic is"], "tokens_to_generate": 6, "top_k": 5, "random_seed": 1}),
    ("PUT", "/api", {"prompts": ["Hope"], "tokens_to_generate": 0, "logprobs": True}),
]
MALFORMED = [
    ("POST", "/v1/completions", "{not json"),
    ("POST", "/v1/completions", {"prompt": "x", "max_tokens": "ten"}),
    ("POST", "/v1/completions", {"prompt": "x", "max_tokens": -5}),
    ("POST", "/v1/completions", {"prompt": [1, 2, 99999999]}),
    ("POST", "/v1/completions", {"prompt": [[7] * 5000]}),
    ("POST", "/v1/completions", {"prompt": "x", "temperature": "hot"}),
    ("PUT", "/api", {"prompts": "not a list"}),
    ("PUT", "/api", {"prompts": [""]}),
    ("PUT", "/api", {"prompts": ["x"], "top_k": 3, "top_p": 0.5}),
]


def request(port, method, path, body):
    payload = body if isinstance(body, str) else json.dumps(body)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    start = time.perf_counter()
    connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    data = response.read().decode()
    connection.close()
    return response.status, data, time.perf_counter() - start


def check(valid, path, body, status, data):
    if status == 503:
        return valid and "busy" in data
    if not valid:
        return status in (400, 413) and "error" in json.loads(data)
    if status != 200:
        return False
    if body.get("stream"):
        return data.rstrip().endswith("data: [DONE]")
    answer = json.loads(data)
    return ("choices" in answer) if path == "/v1/completions" else ("text" in answer and "segments" in answer)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    lock = threading.Lock()
    counts = {"valid": 0, "malformed": 0, "503": 0, "unexpected": 0}
    latencies = []
    deadline = time.time() + args.seconds

    def client(seed):
        rng = random.Random(seed)
        while time.time() < deadline:
            valid = rng.random() < 0.6
            method, path, body = rng.choice(VALID if valid else MALFORMED)
            try:
                status, data, seconds = request(args.port, method, path, body)
                ok = check(valid, path, body if isinstance(body, dict) else {}, status, data)
            except Exception as error:  # a dropped connection is a failure too
                status, data, seconds, ok = 0, repr(error), 0, False
            with lock:
                if not ok:
                    counts["unexpected"] += 1
                    print("unexpected:", method, path, status, data[:200])
                elif status == 503:
                    counts["503"] += 1
                else:
                    counts["valid" if valid else "malformed"] += 1
                    if valid:
                        latencies.append(seconds)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    alive = request(args.port, "GET", "/health", "")[0] == 200
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0  # noqa: E731
    print(f"{args.clients} clients, {args.seconds:.0f} s: {counts['valid']} valid answered, {counts['malformed']} malformed "
          f"refused (4xx), {counts['503']} busy (503), {counts['unexpected']} unexpected; server alive: {alive}")
    print(f"latency of answered valid requests: p50 {pick(0.5):.0f} ms, p90 {pick(0.9):.0f} ms, p99 {pick(0.99):.0f} ms, "
          f"max {pick(1.0):.0f} ms")
    raise SystemExit(0 if alive and counts["unexpected"] == 0 else 1)


if __name__ == "__main__":
    main()

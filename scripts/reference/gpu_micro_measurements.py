#!/usr/bin/env python3
"""Micro-measurements of one NVIDIA GPU for the planner's GPU time model (issue 21): GEMM time over
the shapes a GPT layer runs (tokens x hidden x TP split, the four linear layers, forward), bf16 and
fp32 (no TF32), plus copy bandwidth, elementwise kernels and fused causal attention. Runs with
PyTorch on the GPU (CUDA events, median of repeats) and prints one JSON object.

    python3 scripts/reference/gpu_micro_measurements.py > data/gpu/NAME.json

Nothing here is fitted to training runs: the planner's GPU model is built from these parts and
checked against published end-to-end runs separately.

Status: written on 2026-12-01 and not run yet (the session's device was no longer lent when it was
ready); its first run on a GPU is its test.
"""
import json
import sys
import time

import torch


def timed(fn, repeats=10, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    times.sort()
    return times[len(times) // 2]


def gemm_rows(dtype, hiddens):
    rows = []
    for hidden in hiddens:
        for tokens in (1024, 4096, 16384):
            for tp in (1, 2, 4, 8):
                # (name, m, k, n): y[m, n] = x[m, k] w[k, n], the layer's four forward GEMMs.
                for name, k, n in (("qkv", hidden, 3 * hidden // tp), ("proj", hidden // tp, hidden),
                                   ("fc1", hidden, 4 * hidden // tp), ("fc2", 4 * hidden // tp, hidden)):
                    m = tokens
                    if m * k * n * 2 > 4e12:  # keep the call short
                        continue
                    a = torch.randn(m, k, device="cuda", dtype=dtype)
                    b = torch.randn(k, n, device="cuda", dtype=dtype)
                    seconds = timed(lambda: torch.matmul(a, b), repeats=7 if m * k * n > 1e11 else 15)
                    rows.append({"layer": name, "hidden": hidden, "tp": tp, "m": m, "k": k, "n": n,
                                 "seconds": seconds, "tflops": 2 * m * k * n / seconds / 1e12})
                    del a, b
    return rows


def main():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    properties = torch.cuda.get_device_properties(0)
    started = time.time()
    result = {
        "device": properties.name, "sms": properties.multi_processor_count,
        "memory_bytes": properties.total_memory, "torch": torch.__version__, "cuda": torch.version.cuda,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "method": "torch.matmul / ops on random data, CUDA events, median of 7-15 repeats after 3 warm-ups",
    }
    big = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    result["bf16_peak_tflops"] = 2 * 8192 ** 3 / timed(lambda: big @ big) / 1e12
    big32 = big.float()
    result["fp32_peak_tflops"] = 2 * 8192 ** 3 / timed(lambda: big32 @ big32) / 1e12
    del big, big32
    source = torch.empty(1 << 28, device="cuda", dtype=torch.float32)  # 1 GiB
    target = torch.empty_like(source)
    result["copy_bytes_per_s"] = 2 * source.numel() * 4 / timed(lambda: target.copy_(source))
    x = torch.randn(16384, 4096, device="cuda", dtype=torch.bfloat16)
    w = torch.ones(4096, device="cuda", dtype=torch.bfloat16)
    elementwise = {}
    for name, fn, bytes_moved in (
            ("layernorm_bf16", lambda: torch.nn.functional.layer_norm(x, (4096,), w, w), 2 * x.numel() * 2),
            ("gelu_bf16", lambda: torch.nn.functional.gelu(x, approximate="tanh"), 2 * x.numel() * 2),
            ("add_bf16", lambda: x + x, 3 * x.numel() * 2),
            ("softmax_bf16", lambda: torch.softmax(x, dim=-1), 2 * x.numel() * 2)):
        seconds = timed(fn)
        elementwise[name] = {"elements": x.numel(), "seconds": seconds, "bytes_per_s": bytes_moved / seconds}
    result["elementwise"] = elementwise
    del x, source, target
    attention = []
    for heads, seq, head_dim, batch in ((12, 1024, 64, 8), (16, 2048, 64, 4), (32, 2048, 128, 4), (64, 2048, 128, 2),
                                        (96, 2048, 128, 1), (32, 4096, 128, 2)):
        q, k, v = (torch.randn(batch, heads, seq, head_dim, device="cuda", dtype=torch.bfloat16, requires_grad=True)
                   for _ in range(3))
        forward = timed(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True))
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        grad = torch.randn_like(out)
        both = timed(lambda: torch.autograd.grad(torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True),
                                                 (q, k, v), grad))
        flops = 4 * batch * heads * seq * seq * head_dim / 2  # causal: half the square
        attention.append({"batch": batch, "heads": heads, "seq": seq, "head_dim": head_dim, "forward_seconds": forward,
                          "forward_backward_seconds": both, "forward_tflops": flops / forward / 1e12,
                          "forward_backward_tflops": 3.5 * flops / both / 1e12})
    result["attention_sdpa_causal_bf16"] = attention
    result["gemm_bf16"] = gemm_rows(torch.bfloat16, (768, 1024, 2048, 4096, 8192, 12288))
    result["gemm_fp32"] = gemm_rows(torch.float32, (768, 1024, 2048, 4096))
    result["seconds_taken"] = time.time() - started
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()

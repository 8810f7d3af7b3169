#!/usr/bin/env python3
"""PyTorch side of `megatron bench`: the same GPT-2 configurations, eager fp32, 2 threads
(`--bf16`: CPU autocast to bf16; `--compile`: torch.compile, whose compilation is warm-up).

Times full training steps (forward, masked-mean cross-entropy, backward, AdamW) of a Hugging Face
GPT2LMHeadModel (random weights, dropout off) on random tokens after warm-up, and prints
ms/step, tokens/s and peak resident memory, like `megatron bench --json`.

    python3 scripts/reference/pytorch_bench.py --config M --steps 5 [--threads 2] [--attn sdpa|eager] [--bf16] [--compile]
        [--device cuda]   (on an NVIDIA GPU: the model and batch there, autocast on cuda, steps synchronized)
"""
import argparse
import json
import resource
import statistics
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

CONFIGS = {  # vocab, seq, layers, hidden, heads, micro-batch
    "S": (8192, 256, 4, 256, 4, 8),
    "M": (50304, 512, 6, 384, 6, 4),
    "124M": (50304, 1024, 12, 768, 12, 4),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="M", choices=CONFIGS)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    parser.add_argument("--bf16", action="store_true", help="torch.autocast('cpu', dtype=torch.bfloat16)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    vocab, seq, layers, hidden, heads, batch = CONFIGS[args.config]
    config = GPT2Config(vocab_size=vocab, n_positions=seq, n_embd=hidden, n_layer=layers, n_head=heads,
                        activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=0, eos_token_id=0)
    config._attn_implementation = args.attn
    model = GPT2LMHeadModel(config).to(args.device)
    model.train()
    forward = torch.compile(model) if args.compile else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    stream = torch.randint(0, vocab, (batch * seq + 1,)).to(args.device)
    tokens, targets = stream[:-1].view(batch, seq), stream[1:].view(batch, seq)
    times = []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.bf16):
            logits = forward(tokens).logits
        loss = torch.nn.functional.cross_entropy(logits.float().view(-1, vocab), targets.reshape(-1))
        loss.backward()
        optimizer.step()
        if args.device == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        if step >= args.warmup:
            times.append(elapsed * 1000)
    ms = statistics.median(times)
    report = {
        "config": args.config,
        "framework": f"pytorch {torch.__version__} {'compiled' if args.compile else 'eager'} {args.device} "
                     f"{'bf16 autocast' if args.bf16 else 'fp32'} ({args.attn} attention)",
        "threads": args.threads, "parameters": sum(p.numel() for p in model.parameters()),
        "tokensPerStep": batch * seq, "steps": len(times), "msPerStep": ms,
        "tokensPerSecond": batch * seq / (ms / 1000),
        "peakMemoryMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "finalLoss": loss.item(),
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
    }
    print(json.dumps(report, sort_keys=True))


if __name__ == "__main__":
    main()

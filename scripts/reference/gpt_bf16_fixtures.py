#!/usr/bin/env python3
"""Writes the bf16 PyTorch reference fixture that Tests/ModelTests compares the Swift GPT's `--bf16` path against.

It does not make new weights or data: it reads the weights ("init/<name>"), input_ids, targets
and loss_mask of Tests/ModelTests/Fixtures/gpt_reference.safetensors (written by
scripts/reference/gpt_fixtures.py, whose float64 results are the reference) into the same
Hugging Face GPT-2 (GPT2LMHeadModel, same config, eager attention) in float32, and runs one
forward + backward two ways with Megatron's masked-mean loss (cross-entropy over the logits
upcast to float32, sum(mask * CE) / sum(mask), ignored targets weighing zero):

  bf16/   under torch.autocast("cpu", dtype=torch.bfloat16): the GEMMs (Conv1D addmm, the
          attention matmuls, the tied output layer) take bf16 operands and give bf16 outputs,
          so what consumes those outputs (the attention softmax, GELU) runs on bf16 tensors;
          the embeddings, LayerNorm and the residual stream stay float32, and so do the
          weights and their gradients. (Not the same rounding points as Megatron's --bf16,
          hence the tolerance-based comparison.)
  fp32/   plain float32, no autocast.

Keys (all float32; gradient names and layouts are the existing fixture's "grad/<name>", i.e.
Hugging Face's: Conv1D weights [in, out], c_attn columns [q | k | v], the tied output layer's
gradient included in transformer.wte.weight [256, 48]):
    bf16/loss [1], bf16/logits [2, 13, 256], bf16/grad/<name>
    fp32/loss [1], fp32/logits [2, 13, 256], fp32/grad/<name>
The metadata repeats the model config and records the measured errors against the float64
reference. The tensors are bit-identical from run to run; the metadata's order in the header
is not (safetensors writes it from a hash map), so the file's checksum may change.

Regenerate (needs torch, transformers, safetensors; CI does not):
    python3 scripts/reference/gpt_bf16_fixtures.py Tests/ModelTests/Fixtures/gpt_reference.safetensors \
        Tests/ModelTests/Fixtures/gpt_reference_bf16.safetensors
"""
import hashlib
import os
import statistics
import sys

import torch
import transformers
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel

IGNORE = -100


def masked_mean_loss(logits, targets, mask):
    """Megatron's loss over float32 logits: sum(mask * CE) / sum(mask), ignored targets weigh zero."""
    flat = logits.float().reshape(-1, logits.shape[-1])
    ce = torch.nn.functional.cross_entropy(flat, targets.reshape(-1), ignore_index=IGNORE, reduction="none")
    weight = mask.reshape(-1) * (targets.reshape(-1) != IGNORE)
    return (ce * weight).sum() / weight.sum()


def build_model(meta, init):
    config = GPT2Config(vocab_size=int(meta["padded_vocab_size"]), n_positions=int(meta["max_positions"]),
                        n_embd=int(meta["hidden_size"]), n_layer=int(meta["num_layers"]), n_head=int(meta["num_heads"]),
                        activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        layer_norm_epsilon=1e-5, tie_word_embeddings=True,
                        bos_token_id=int(meta["vocab_size"]) - 1, eos_token_id=int(meta["vocab_size"]) - 1)
    model = GPT2LMHeadModel(config)
    model.config._attn_implementation = "eager"
    named = dict(model.named_parameters())  # lm_head.weight is tied to transformer.wte.weight
    assert set(named) == set(init), sorted(set(named) ^ set(init))
    with torch.no_grad():
        for name, p in named.items():
            assert p.shape == init[name].shape, name
            p.copy_(init[name])
    model.float().train()
    return model, named


def run(model, named, input_ids, targets, loss_mask, autocast):
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        logits = model(input_ids).logits
        loss = masked_mean_loss(logits, targets, loss_mask)
    loss.backward()
    grads = {name: p.grad.detach().float().clone() for name, p in named.items()}
    return loss.detach().float().reshape(1), logits.detach().float(), grads


def gemm_output_dtypes(model, input_ids):
    """Which module outputs come out bf16 under autocast (printed, for the report)."""
    seen = {}

    def record(module, inputs, output):
        first = output[0] if isinstance(output, tuple) else output
        if isinstance(first, torch.Tensor):
            seen.setdefault(type(module).__name__, str(first.dtype).replace("torch.", ""))

    hooks = [m.register_forward_hook(record) for n, m in model.named_modules() if n]
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        model(input_ids)
    for h in hooks:
        h.remove()
    return seen


def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def main(source, path):
    with safe_open(source, "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    digest = hashlib.sha256(open(source, "rb").read()).hexdigest()
    init = {k[len("init/"):]: v for k, v in tensors.items() if k.startswith("init/")}
    input_ids, targets, loss_mask = tensors["input_ids"], tensors["targets"], tensors["loss_mask"]
    ref_loss = tensors["loss"].double()
    ref_grads = {name: tensors["grad/" + name] for name in init}

    model, named = build_model(meta, init)
    out = {}
    errors = {}
    for tag, autocast in (("fp32", False), ("bf16", True)):
        loss, logits, grads = run(model, named, input_ids, targets, loss_mask, autocast)
        out[f"{tag}/loss"] = loss
        out[f"{tag}/logits"] = logits
        for name, g in grads.items():
            out[f"{tag}/grad/{name}"] = g
        loss_err = abs(loss.double().item() - ref_loss.item()) / abs(ref_loss.item())
        logits_err = rel(logits, tensors["logits"])
        per_tensor = {name: rel(grads[name], ref_grads[name]) for name in grads}
        values = sorted(per_tensor.values())
        errors[tag] = (loss_err, logits_err, max(values), statistics.median(values), per_tensor)
        worst = max(per_tensor, key=per_tensor.get)
        print(f"{tag}: loss {loss.item():.7f} (reference {ref_loss.item():.7f}), loss relative error {loss_err:.3e}, "
              f"logits normwise relative error {logits_err:.3e}")
        print(f"{tag}: gradient normwise relative error over {len(values)} tensors: max {max(values):.3e} ({worst}), "
              f"median {statistics.median(values):.3e}, min {min(values):.3e}")

    print("bf16 per-tensor gradient errors:")
    for name, e in sorted(errors["bf16"][4].items(), key=lambda kv: -kv[1]):
        print(f"  {e:.3e}  {name}")
    print("module output dtypes under autocast:", gemm_output_dtypes(model, input_ids))

    metadata = {k: meta[k] for k in ("vocab_size", "padded_vocab_size", "num_layers", "hidden_size", "num_heads",
                                     "max_positions", "batch", "seq_length")}
    metadata.update({"source_fixture": source.split("/")[-1], "source_sha256": digest,
                     "autocast": "torch.autocast('cpu', dtype=torch.bfloat16)",
                     "torch": torch.__version__, "transformers": transformers.__version__})
    for tag in ("fp32", "bf16"):
        loss_err, logits_err, gmax, gmed, _ = errors[tag]
        metadata.update({f"{tag}_loss_rel_error": f"{loss_err:.3e}", f"{tag}_logits_rel_error": f"{logits_err:.3e}",
                         f"{tag}_grad_rel_error_max": f"{gmax:.3e}", f"{tag}_grad_rel_error_median": f"{gmed:.3e}"})
    save_file({k: v.contiguous() for k, v in out.items()}, path, metadata=metadata)
    os.chmod(path, 0o644)  # safetensors creates the file owner-only
    print(f"wrote {path}: {len(out)} tensors")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/ModelTests/Fixtures/gpt_reference.safetensors",
         sys.argv[2] if len(sys.argv) > 2 else "Tests/ModelTests/Fixtures/gpt_reference_bf16.safetensors")

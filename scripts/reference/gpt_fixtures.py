#!/usr/bin/env python3
"""Writes the PyTorch reference fixture that Tests/ModelTests compares the Swift GPT against.

A small GPT-2 (Hugging Face GPT2LMHeadModel, random weights, no download) runs in float64 on
float32-rounded weights: its logits, masked-mean loss, every parameter's gradient and the
weights after two AdamW steps are written to one safetensors file, with Hugging Face's names
and layouts (Conv1D weights are [in, out]; c_attn columns are [q | k | v]).

Regenerate (needs torch, transformers, safetensors; CI does not):
    python3 scripts/reference/gpt_fixtures.py Tests/ModelTests/Fixtures/gpt_reference.safetensors
"""
import sys

import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel

VOCAB = 211            # true vocabulary; padded to 256 (multiple of 128) as Megatron does
PADDED_VOCAB = 256
LAYERS, HIDDEN, HEADS, POSITIONS = 2, 48, 3, 16
BATCH, SEQ = 2, 13
LR, BETAS, EPS, WD = 1e-3, (0.9, 0.95), 1e-8, 0.1
IGNORE = -100


def masked_mean_loss(logits, targets, mask):
    """Megatron's loss: sum(mask * CE) / sum(mask), with ignored targets weighing zero."""
    flat = logits.reshape(-1, logits.shape[-1])
    ce = torch.nn.functional.cross_entropy(flat, targets.reshape(-1), ignore_index=IGNORE, reduction="none")
    weight = mask.reshape(-1) * (targets.reshape(-1) != IGNORE)
    return (ce * weight).sum() / weight.sum()


def main(path):
    torch.manual_seed(20261121)
    config = GPT2Config(vocab_size=PADDED_VOCAB, n_positions=POSITIONS, n_embd=HIDDEN, n_layer=LAYERS,
                        n_head=HEADS, activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0,
                        attn_pdrop=0.0, layer_norm_epsilon=1e-5, tie_word_embeddings=True,
                        bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1)
    model = GPT2LMHeadModel(config)
    model.config._attn_implementation = "eager"
    with torch.no_grad():
        for name, p in model.named_parameters():
            # Perturb everything (biases and LayerNorm too) so no parameter is a trivial 0 or 1.
            p.add_(torch.randn_like(p) * (0.05 if p.dim() == 1 else 0.02))
            p.copy_(p.float())  # the Swift side starts from exactly these float32 values
    model = model.double()
    model.train()

    input_ids = torch.randint(0, VOCAB, (BATCH, SEQ))
    targets = torch.randint(0, VOCAB, (BATCH, SEQ))
    targets[0, 3] = IGNORE
    targets[1, 7] = IGNORE
    loss_mask = torch.ones(BATCH, SEQ, dtype=torch.float64)
    loss_mask[1, 0] = 0.0
    loss_mask[0, SEQ - 1] = 0.0

    named = dict(model.named_parameters())  # lm_head.weight is tied to transformer.wte.weight
    out = {"input_ids": input_ids, "targets": targets, "loss_mask": loss_mask.float()}
    for name, p in named.items():
        out["init/" + name] = p.detach().float()

    decay = [p for n, p in named.items() if p.dim() == 2]
    no_decay = [p for n, p in named.items() if p.dim() != 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": WD},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=LR, betas=BETAS, eps=EPS)
    for step in range(3):
        optimizer.zero_grad()
        logits = model(input_ids).logits
        loss = masked_mean_loss(logits, targets, loss_mask)
        if step == 0:
            loss.backward()
            out["logits"] = logits.detach().float()
            out["loss"] = loss.detach().reshape(1).float()
            for name, p in named.items():
                out["grad/" + name] = p.grad.detach().float()
        else:
            out[f"loss_after_step{step}"] = loss.detach().reshape(1).float()
            if step == 2:
                break
            loss.backward()
        optimizer.step()
        for name, p in named.items():
            out[f"step{step + 1}/" + name] = p.detach().float()

    metadata = {"vocab_size": str(VOCAB), "padded_vocab_size": str(PADDED_VOCAB), "num_layers": str(LAYERS),
                "hidden_size": str(HIDDEN), "num_heads": str(HEADS), "max_positions": str(POSITIONS),
                "batch": str(BATCH), "seq_length": str(SEQ), "lr": str(LR), "beta1": str(BETAS[0]),
                "beta2": str(BETAS[1]), "eps": str(EPS), "weight_decay": str(WD),
                "torch": torch.__version__}
    save_file({k: v.contiguous() for k, v in out.items()}, path, metadata=metadata)
    print(f"wrote {path}: loss {out['loss'].item():.6f}, after 1 step {out['loss_after_step1'].item():.6f}, "
          f"after 2 steps {out['loss_after_step2'].item():.6f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/ModelTests/Fixtures/gpt_reference.safetensors")

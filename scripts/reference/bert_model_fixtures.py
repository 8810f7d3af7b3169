#!/usr/bin/env python3
"""Writes the reference fixture Tests/ModelTests/BERTReferenceTests compares the Swift BERT against.

Two cases, each in float64 on float32-rounded weights, with padding in the batch (sequences of
17, 11 and 6 tokens in 17 positions), two segments and masked positions:

- "post": Hugging Face's BertForPreTraining (random weights, odd sizes, exact GELU). Its weights
  are stored under this project's (Megatron-core) names: the fused per-head [q k v] rows,
  `embeddings.LayerNorm` as layer 0's input LayerNorm, each layer's `output.LayerNorm` as the
  next layer's input LayerNorm (the last one's as the final LayerNorm): Megatron's
  `--apply-residual-connection-post-layernorm` order, which is the original post-LN BERT.
  The script checks that its own reference module gives Hugging Face's losses with that mapping.
- "pre": Megatron-LM's rearranged (pre-LN) BERT, written here with the same parameters.

For each: the masked-LM logits, the sentence-order logits, both losses and every parameter's
gradient of their sum. Then the fine-tuning heads on the post-LN encoder, Hugging Face's
`BertForSequenceClassification` ("classify": 3 classes) and `BertForMultipleChoice` ("choice": the
batch's 3 sequences as one question's choices): logits, loss, weights and gradients. The post-LN model is also saved by `save_pretrained` (float32) into
`hf_bert/` beside the fixture, for the Hugging Face import and export tests. Regenerate (needs torch, transformers, safetensors; CI does not):
    python3 scripts/reference/bert_model_fixtures.py Tests/ModelTests/Fixtures/bert_reference.safetensors
"""
import math
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertForMultipleChoice, BertForPreTraining, BertForSequenceClassification

VOCAB, LAYERS, HIDDEN, HEADS, POSITIONS, TYPES = 97, 2, 40, 5, 24, 2
BATCH, SEQ = 3, 17
LENGTHS = [17, 11, 6]
EPS = 1e-12
IGNORE = -100


def hf_to_ours(hf):
    """Hugging Face BertForPreTraining tensors -> this project's names (post-LN order)."""
    c, hd = HIDDEN, HIDDEN // HEADS
    out = {
        "embedding.word_embeddings.weight": hf["bert.embeddings.word_embeddings.weight"],
        "embedding.position_embeddings.weight": hf["bert.embeddings.position_embeddings.weight"],
        "embedding.tokentype_embeddings.weight": hf["bert.embeddings.token_type_embeddings.weight"],
        "decoder.layers.0.input_layernorm.weight": hf["bert.embeddings.LayerNorm.weight"],
        "decoder.layers.0.input_layernorm.bias": hf["bert.embeddings.LayerNorm.bias"],
    }
    for i in range(LAYERS):
        h, o = f"bert.encoder.layer.{i}.", f"decoder.layers.{i}."
        qkv_w = [hf[h + f"attention.self.{x}.weight"].reshape(HEADS, hd, c) for x in ("query", "key", "value")]
        qkv_b = [hf[h + f"attention.self.{x}.bias"].reshape(HEADS, hd) for x in ("query", "key", "value")]
        out[o + "self_attention.linear_qkv.weight"] = torch.stack(qkv_w, 1).reshape(3 * c, c)
        out[o + "self_attention.linear_qkv.bias"] = torch.stack(qkv_b, 1).reshape(3 * c)
        out[o + "self_attention.linear_proj.weight"] = hf[h + "attention.output.dense.weight"]
        out[o + "self_attention.linear_proj.bias"] = hf[h + "attention.output.dense.bias"]
        out[o + "pre_mlp_layernorm.weight"] = hf[h + "attention.output.LayerNorm.weight"]
        out[o + "pre_mlp_layernorm.bias"] = hf[h + "attention.output.LayerNorm.bias"]
        out[o + "mlp.linear_fc1.weight"] = hf[h + "intermediate.dense.weight"]
        out[o + "mlp.linear_fc1.bias"] = hf[h + "intermediate.dense.bias"]
        out[o + "mlp.linear_fc2.weight"] = hf[h + "output.dense.weight"]
        out[o + "mlp.linear_fc2.bias"] = hf[h + "output.dense.bias"]
        after = f"decoder.layers.{i + 1}.input_layernorm." if i + 1 < LAYERS else "decoder.final_layernorm."
        out[after + "weight"] = hf[h + "output.LayerNorm.weight"]
        out[after + "bias"] = hf[h + "output.LayerNorm.bias"]
    for ours, theirs in [("lm_head.dense", "cls.predictions.transform.dense"),
                         ("lm_head.layer_norm", "cls.predictions.transform.LayerNorm"),
                         ("pooler.dense", "bert.pooler.dense"), ("binary_head", "cls.seq_relationship")]:
        out[ours + ".weight"] = hf[theirs + ".weight"]
        out[ours + ".bias"] = hf[theirs + ".bias"]
    out["output_layer.bias"] = hf["cls.predictions.bias"]
    return out


def reference(w, post, tokens, types, lengths):
    """The model on our names: embeddings, layers (residual from the LayerNorm output when
    `post`), final LayerNorm, masked-LM and sentence-order logits."""
    ln = lambda x, name: torch.nn.functional.layer_norm(x, (HIDDEN,), w[name + ".weight"], w[name + ".bias"], EPS)
    lin = lambda x, name: x @ w[name + ".weight"].T + w[name + ".bias"]
    gelu = lambda x: 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    b, s, c, hd = tokens.shape[0], tokens.shape[1], HIDDEN, HIDDEN // HEADS
    x = (w["embedding.word_embeddings.weight"][tokens] + w["embedding.position_embeddings.weight"][:s]
         + w["embedding.tokentype_embeddings.weight"][types])
    keys = torch.arange(s)[None, :] < torch.tensor(lengths)[:, None]                  # [b, s]
    for i in range(LAYERS):
        p = f"decoder.layers.{i}."
        h = ln(x, p + "input_layernorm")
        qkv = lin(h, p + "self_attention.linear_qkv").reshape(b, s, HEADS, 3, hd)
        q, k, v = (qkv[:, :, :, j].transpose(1, 2) for j in range(3))                 # [b, heads, s, hd]
        scores = q @ k.transpose(-1, -2) / math.sqrt(hd)
        scores = scores.masked_fill(~keys[:, None, None, :], float("-inf"))
        attention = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, c)
        r = (h if post else x) + lin(attention, p + "self_attention.linear_proj")
        h2 = ln(r, p + "pre_mlp_layernorm")
        x = (h2 if post else r) + lin(gelu(lin(h2, p + "mlp.linear_fc1")), p + "mlp.linear_fc2")
    x = ln(x, "decoder.final_layernorm")
    lm = ln(gelu(lin(x, "lm_head.dense")), "lm_head.layer_norm")
    logits = lm @ w["embedding.word_embeddings.weight"].T + w["output_layer.bias"]
    binary = lin(torch.tanh(lin(x[:, 0], "pooler.dense")), "binary_head")
    return logits, binary


def losses(logits, binary, labels, order):
    mlm = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), labels.reshape(-1), ignore_index=IGNORE)
    return mlm, torch.nn.functional.cross_entropy(binary, order, ignore_index=IGNORE)


def main(path):
    torch.manual_seed(20261130)
    config = BertConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                        intermediate_size=4 * HIDDEN, hidden_act="gelu", hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0, max_position_embeddings=POSITIONS, type_vocab_size=TYPES,
                        layer_norm_eps=EPS)
    model = BertForPreTraining(config)
    model.config._attn_implementation = "eager"
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * (0.05 if p.dim() == 1 else 0.02))
            p.copy_(p.float())
    model = model.double().eval()

    tokens = torch.randint(0, VOCAB, (BATCH, SEQ))
    types = torch.zeros(BATCH, SEQ, dtype=torch.long)
    labels = torch.full((BATCH, SEQ), IGNORE)
    for b, n in enumerate(LENGTHS):
        types[b, n // 2:n] = 1
        tokens[b, n:] = 0                                   # [PAD]
        for position in range(1, n - 1, 3):                 # every third token masked
            labels[b, position] = tokens[b, position].item()
            tokens[b, position] = 3                         # a [MASK] id
    order = torch.tensor([1, 0, 1])
    attention_mask = (torch.arange(SEQ)[None, :] < torch.tensor(LENGTHS)[:, None]).long()

    out = {"tokens": tokens.int(), "token_types": types.int(), "lengths": torch.tensor(LENGTHS, dtype=torch.int32),
           "labels": labels.clamp(min=0).int(), "loss_mask": (labels != IGNORE).float(),
           "sentence_order": order.int()}

    hf = model(input_ids=tokens, token_type_ids=types, attention_mask=attention_mask, labels=labels,
               next_sentence_label=order)
    hf.loss.backward()
    named = dict(model.named_parameters())
    hf_weights = {n: p.detach() for n, p in named.items()}
    hf_grads = {n: p.grad.detach() for n, p in named.items()}
    ours = {n: t.clone().requires_grad_(True) for n, t in hf_to_ours(hf_weights).items()}
    logits, binary = reference(ours, True, tokens, types, LENGTHS)
    mlm, sop = losses(logits, binary, labels, order)
    assert abs((mlm + sop).item() - hf.loss.item()) < 1e-12, (mlm + sop, hf.loss)
    valid = attention_mask.bool()
    assert torch.allclose(logits[valid], hf.prediction_logits[valid], atol=1e-12)
    assert torch.allclose(binary, hf.seq_relationship_logits, atol=1e-12)
    out["post.mlm_logits"] = hf.prediction_logits.detach()
    out["post.sop_logits"] = hf.seq_relationship_logits.detach()
    out["post.mlm_loss"] = mlm.detach().reshape(1)
    out["post.sop_loss"] = sop.detach().reshape(1)
    for name, tensor in hf_to_ours(hf_weights).items():
        out["post.w." + name] = tensor.float()
    for name, tensor in hf_to_ours(hf_grads).items():
        out["post.g." + name] = tensor
    # hf_to_ours sums nothing, so each of our gradients is Hugging Face's for the same tensor.

    torch.manual_seed(7)
    pre = {n: (t + torch.randn_like(t) * 0.02).float().double().requires_grad_(True)
           for n, t in hf_to_ours(hf_weights).items()}
    logits, binary = reference(pre, False, tokens, types, LENGTHS)
    mlm, sop = losses(logits, binary, labels, order)
    (mlm + sop).backward()
    out["pre.mlm_logits"] = logits.detach()
    out["pre.sop_logits"] = binary.detach()
    out["pre.mlm_loss"] = mlm.detach().reshape(1)
    out["pre.sop_loss"] = sop.detach().reshape(1)
    for name, tensor in pre.items():
        out["pre.w." + name] = tensor.detach().float()
        out["pre.g." + name] = tensor.grad.detach()

    # Fine-tuning heads on the post-LN encoder: Hugging Face's BertForSequenceClassification (3
    # classes, a label per sequence) and BertForMultipleChoice (the 3 sequences are one
    # question's choices). Their encoder and pooler are the pretraining model's.
    for case, cls, head, labels in [("classify", BertForSequenceClassification, "classification_head", torch.tensor([2, 0, 1])),
                                    ("choice", BertForMultipleChoice, "multichoice_head", torch.tensor([2]))]:
        torch.manual_seed(11)
        tuned = cls(BertConfig(**{**config.to_dict(), "id2label": {0: "a", 1: "b", 2: "c"}}))
        tuned.config._attn_implementation = "eager"
        tuned.bert.load_state_dict(model.bert.state_dict())
        with torch.no_grad():
            tuned.classifier.bias.add_(torch.randn_like(tuned.classifier.bias) * 0.05)
            for p in tuned.classifier.parameters():
                p.copy_(p.float())
        tuned = tuned.double().eval()
        shape = (1, BATCH, SEQ) if case == "choice" else (BATCH, SEQ)
        result = tuned(input_ids=tokens.reshape(shape), token_type_ids=types.reshape(shape),
                       attention_mask=attention_mask.reshape(shape), labels=labels)
        result.loss.backward()
        named = dict(tuned.named_parameters())
        weights = {n: p.detach() for n, p in named.items()}
        grads = {n: p.grad.detach() for n, p in named.items()}
        out[f"{case}.logits"] = result.logits.detach().reshape(-1)
        out[f"{case}.loss"] = result.loss.detach().reshape(1)
        out[f"{case}.labels"] = labels.int()
        for source, prefix in [(weights, "w"), (grads, "g")]:
            mapped = hf_to_ours({**source, **{k: v for k, v in hf_weights.items() if k.startswith("cls.")}}) if source is weights \
                else hf_to_ours({**source, **{k: torch.zeros_like(v) for k, v in hf_weights.items() if k.startswith("cls.")}})
            for name, tensor in mapped.items():
                if name.startswith(("lm_head.", "binary_head.", "output_layer.")):
                    continue  # the pretraining heads are not part of a fine-tuning model
                out[f"{case}.{prefix}.{name}"] = tensor.float() if prefix == "w" else tensor
            out[f"{case}.{prefix}.{head}.weight"] = (source["classifier.weight"].float() if prefix == "w"
                                                    else source["classifier.weight"])
            out[f"{case}.{prefix}.{head}.bias"] = (source["classifier.bias"].float() if prefix == "w"
                                                  else source["classifier.bias"])

    metadata = {"vocab_size": str(VOCAB), "num_layers": str(LAYERS), "hidden_size": str(HIDDEN),
                "num_heads": str(HEADS), "max_positions": str(POSITIONS), "token_types": str(TYPES),
                "batch": str(BATCH), "seq_length": str(SEQ), "layernorm_epsilon": str(EPS), "torch": torch.__version__}
    save_file({k: v.contiguous() for k, v in out.items()}, path, metadata=metadata)
    # The same post-LN model as Hugging Face saves it (float32), for the import and export tests.
    hf_directory = os.path.join(os.path.dirname(path), "hf_bert")
    model.float().save_pretrained(hf_directory, safe_serialization=True)
    print(f"wrote {path}: post-LN mlm {out['post.mlm_loss'].item():.6f} sop {out['post.sop_loss'].item():.6f}; "
          f"pre-LN mlm {out['pre.mlm_loss'].item():.6f} sop {out['pre.sop_loss'].item():.6f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/ModelTests/Fixtures/bert_reference.safetensors")

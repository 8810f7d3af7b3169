#!/usr/bin/env python3
"""Fixtures for reading Megatron-LM checkpoints: megatron-core's own GPTModel (PyPI megatron-core,
run on the CPU), saved in Megatron-LM's legacy checkpoint layout, and its outputs on a batch.

megatron-core runs on the CPU with a gloo group of one rank once two CUDA-only helpers are
replaced (the global memory buffer allocates on the CPU; the RNG tracker is the inference one,
whose `fork` does nothing), an explicit causal mask is passed, and the local layer spec is used.

Writes into Tests/TrainingTests/Fixtures/megatron-lm:
  tp1/        latest_checkpointed_iteration.txt and iter_0000007/mp_rank_00/model_optim_rng.pt:
              {'args': argparse.Namespace with Megatron-LM's argument names, 'checkpoint_version',
              'iteration', 'model': the state dict, 'rng_state': Python/numpy/torch RNG states}
  tp2pp2/     the same model cut for 2 tensor-parallel ranks x 2 pipeline stages as Megatron-LM
              saves it (mp_rank_TT_PPP, local layer numbers on each stage, the last stage's
              output_layer.weight a copy of its word-embedding shard)
  expected.json  tokens, labels, megatron-core's per-token losses, the logits of the first
              three positions and every parameter's gradient norm after backward of the mean loss
  tp1-exact-gelu-ffn80/, expected-exact-gelu-ffn80.json   the same for a model with the exact
              erf GELU (Megatron-LM's --no-bias-gelu-fusion) and an MLP of 80 (--ffn-hidden-size)
  pp2-vp2/    the first model cut for 2 pipeline stages of 2 model chunks each (the interleaved
              schedule's checkpoint: 'model0', 'model1' per file, layers numbered within each chunk)
  tp2pp2-untied-eps1e-6/, expected-untied-eps1e-6.json   a model with an output layer of its own
              (--untie-embeddings-and-output-weights) and LayerNorm epsilon 1e-6 (--norm-epsilon),
              cut for TP 2 x PP 2

    pip install megatron-core==0.16.1 torch numpy
    python3 scripts/reference/megatron_lm_fixtures.py

`--check-export DIR` instead loads a checkpoint that `megatron convert --output-format
megatron-lm` wrote from the imported fixture (TP 1 x PP 1) into megatron-core's GPTModel with
`strict=True` and compares its loss on the fixture batch with the recorded one (`--untied` for
an export of the untied variant):

    megatron convert --input-format megatron-lm --input Tests/TrainingTests/Fixtures/megatron-lm/tp2pp2 --output /tmp/ours
    megatron convert --output-format megatron-lm --input /tmp/ours --output /tmp/exported
    python3 scripts/reference/megatron_lm_fixtures.py --check-export /tmp/exported
"""
import argparse
import functools
import json
import operator
import os
import random

import numpy as np
import torch
import torch.distributed as dist

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.environ.get("MEGATRON_LM_FIXTURE_OUT", os.path.join(ROOT, "Tests/TrainingTests/Fixtures/megatron-lm"))  # the env: a scratch folder
# VOCAB: the test tokenizer's 2048 ids padded as Megatron-LM pads them with
# --make-vocab-size-divisible-by 96: to a multiple of 96 x TP, 2112 for TP 1 and for TP 2 alike (a
# padding this project's default of 128 would not give).
LAYERS, HIDDEN, HEADS, VOCAB, POSITIONS, SEQ, BATCH, ITERATION = 4, 48, 4, 2112, 32, 12, 2, 7


def megatron_core():
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    dist.init_process_group("gloo", rank=0, world_size=1)
    from megatron.core import parallel_state, utils
    from megatron.core.tensor_parallel import random as megatron_random
    parallel_state.initialize_model_parallel(1, 1)
    megatron_random.initialize_rng_tracker(inference_rng_tracker=True)

    def get_tensor(self, tensor_shape, dtype, name, mem_alloc_context=None):
        return torch.empty(functools.reduce(operator.mul, tensor_shape, 1), dtype=dtype).view(*tensor_shape)

    utils.GlobalMemoryBuffer.get_tensor = get_tensor


def build_model(exact_gelu=False, ffn=4 * HIDDEN, untied=False, epsilon=1e-5):
    from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec
    from megatron.core.models.gpt.gpt_model import GPTModel
    from megatron.core.transformer.transformer_config import TransformerConfig
    torch.manual_seed(5)
    # bias_activation_fusion: Megatron-LM's default --bias-gelu-fusion, the tanh GELU; without it
    # (--no-bias-gelu-fusion) the MLP runs F.gelu, the exact erf GELU.
    config = TransformerConfig(num_layers=LAYERS, hidden_size=HIDDEN, num_attention_heads=HEADS, ffn_hidden_size=ffn,
                               use_cpu_initialization=True, hidden_dropout=0.0, attention_dropout=0.0, layernorm_epsilon=epsilon,
                               bias_activation_fusion=not exact_gelu, params_dtype=torch.float32, init_method_std=0.3)
    model = GPTModel(config, transformer_layer_spec=get_gpt_layer_local_spec(), vocab_size=VOCAB,
                     max_sequence_length=POSITIONS, share_embeddings_and_output_weights=not untied,
                     position_embedding_type="learned_absolute")
    with torch.no_grad():  # LayerNorms and biases away from 1 and 0, so that a misplaced one shows
        for name, parameter in model.named_parameters():
            if parameter.dim() == 1:
                parameter.add_(torch.randn_like(parameter) * 0.1)
    return model


def args(tp, pp, exact_gelu=False, ffn=4 * HIDDEN, untied=False, epsilon=1e-5, vp=None):
    from megatron.core.transformer.enums import AttnMaskType
    return argparse.Namespace(
        num_layers=LAYERS, hidden_size=HIDDEN, ffn_hidden_size=ffn, num_attention_heads=HEADS,
        max_position_embeddings=POSITIONS, seq_length=SEQ, padded_vocab_size=VOCAB, make_vocab_size_divisible_by=96,
        tensor_model_parallel_size=tp, pipeline_model_parallel_size=pp, virtual_pipeline_model_parallel_size=vp,
        num_layers_per_virtual_pipeline_stage=LAYERS // (pp * vp) if vp else None,
        untie_embeddings_and_output_weights=untied, norm_epsilon=epsilon, normalization="LayerNorm",
        position_embedding_type="learned_absolute", swiglu=False, group_query_attention=False, num_query_groups=None,
        add_bias_linear=True, num_experts=None, bias_gelu_fusion=not exact_gelu, openai_gelu=False,
        apply_residual_connection_post_layernorm=False, transformer_impl="local", params_dtype=torch.float32,
        attn_mask_type=AttnMaskType.causal, tokenizer_type="GPT2BPETokenizer", iteration=ITERATION)


def rng_state():
    random.seed(7)  # so that regenerating the fixtures writes the same bytes
    np.random.seed(7)
    return [{"random_rng_state": random.getstate(), "np_rng_state": np.random.get_state(),
             "torch_rng_state": torch.get_rng_state(), "cuda_rng_state": None, "rng_tracker_states": {}}]


def save(directory, tp_rank, pp_rank, tp, pp, model_state, chunks=None, **variant):
    name = f"mp_rank_{tp_rank:02d}" + (f"_{pp_rank:03d}" if pp > 1 else "")
    path = os.path.join(directory, f"iter_{ITERATION:07d}", name)
    os.makedirs(path, exist_ok=True)
    models = {"model": model_state} if chunks is None else {"model%d" % i: chunk for i, chunk in enumerate(chunks)}
    torch.save({"args": args(tp, pp, **variant), "checkpoint_version": 3.0, "iteration": ITERATION, **models,
                "rng_state": rng_state()}, os.path.join(path, "model_optim_rng.pt"))
    with open(os.path.join(directory, "latest_checkpointed_iteration.txt"), "w") as file:
        file.write(str(ITERATION))


def shard(name, tensor, rank, size):
    """Megatron's tensor-parallel split of a full tensor."""
    rows = ("word_embeddings.weight", "linear_qkv.weight", "linear_qkv.bias", "linear_fc1.weight", "linear_fc1.bias",
            "output_layer.weight")
    columns = ("linear_proj.weight", "linear_fc2.weight")
    if name.endswith(rows):
        return tensor.chunk(size, dim=0)[rank].clone()
    if name.endswith(columns):
        return tensor.chunk(size, dim=1)[rank].clone()
    return tensor.clone()


def check_export(directory, untied):
    megatron_core()
    model = build_model(untied=True, epsilon=1e-6) if untied else build_model()
    with open(os.path.join(directory, "latest_checkpointed_iteration.txt")) as file:
        iteration = int(file.read().strip())
    saved = torch.load(os.path.join(directory, f"iter_{iteration:07d}", "mp_rank_00", "model_optim_rng.pt"), weights_only=False)
    model.load_state_dict(saved["model"], strict=True)
    with open(os.path.join(OUT, "expected-untied-eps1e-6.json" if untied else "expected.json")) as file:
        expected = json.load(file)
    tokens, labels = torch.tensor(expected["tokens"]), torch.tensor(expected["labels"])
    positions = torch.arange(SEQ).unsqueeze(0).expand(BATCH, -1)
    mask = torch.triu(torch.ones(1, 1, SEQ, SEQ), diagonal=1).bool()
    with torch.no_grad():
        loss = model(tokens, positions, mask, labels=labels).mean().item()
    error = abs(loss - expected["mean_loss"]) / expected["mean_loss"]
    print(f"strict load ok; megatron-core loss {loss:.9f} vs the fixture's {expected['mean_loss']:.9f}: relative error {error:.2e}")
    raise SystemExit(0 if error < 1e-6 else 1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--check-export")
    parser.add_argument("--untied", action="store_true")
    options = parser.parse_args()
    if options.check_export:
        return check_export(options.check_export, options.untied)
    megatron_core()
    model = build_model()
    save(os.path.join(OUT, "tp1"), 0, 0, 1, 1, model.state_dict())
    save_sharded(os.path.join(OUT, "tp2pp2"), model)
    save_interleaved(os.path.join(OUT, "pp2-vp2"), model)
    record(model, "expected.json")
    # A variant with the exact GELU (--no-bias-gelu-fusion) and an MLP of 80 (--ffn-hidden-size), whole.
    variant = build_model(exact_gelu=True, ffn=80)
    save(os.path.join(OUT, "tp1-exact-gelu-ffn80"), 0, 0, 1, 1, variant.state_dict(), exact_gelu=True, ffn=80)
    record(variant, "expected-exact-gelu-ffn80.json")
    # An untied output layer (--untie-embeddings-and-output-weights), epsilon 1e-6, cut for TP 2 x PP 2.
    untied = build_model(untied=True, epsilon=1e-6)
    save_sharded(os.path.join(OUT, "tp2pp2-untied-eps1e-6"), untied, untied=True, epsilon=1e-6)
    record(untied, "expected-untied-eps1e-6.json")


def save_interleaved(directory, model, pp=2, vp=2):
    """`model` (TP 1) for `pp` stages of `vp` model chunks as Megatron-LM saves an interleaved run:
    chunk c of stage s holds virtual stage c pp + s, its layers numbered from 0 within the chunk;
    the first stage's chunk 0 holds the embedding, the last stage's last chunk the final LayerNorm
    and its copy of the tied word embedding as output_layer.weight."""
    state = dict(model.state_dict())
    per_chunk = LAYERS // (pp * vp)
    for stage in range(pp):
        chunks = []
        for chunk in range(vp):
            first = (chunk * pp + stage) * per_chunk
            local = {}
            for name, tensor in state.items():
                if name.startswith("decoder.layers."):
                    layer = int(name.split(".")[2])
                    if not first <= layer < first + per_chunk:
                        continue
                    name = "decoder.layers.%d.%s" % (layer - first, name.split(".", 3)[3])
                elif name.startswith("embedding.") and (stage, chunk) != (0, 0):
                    continue
                elif name.startswith("decoder.final_layernorm") or name.startswith("output_layer"):
                    if (stage, chunk) != (pp - 1, vp - 1):
                        continue
                local[name] = tensor
            if (stage, chunk) == (pp - 1, vp - 1):
                local["output_layer.weight"] = state["embedding.word_embeddings.weight"].clone()
            chunks.append(local)
        save(directory, 0, stage, 1, pp, None, chunks=chunks, vp=vp)


def stage_state(state, stage, rank, tp, pp):
    """The whole model's `state` as rank `rank` of stage `stage` holds it: local layer numbers;
    each tensor its TP shard; with a tied output layer the last stage (of several) holds a copy
    of its word-embedding shard."""
    per_stage = LAYERS // pp
    local = {}
    for name, tensor in state.items():
        if name.startswith("decoder.layers."):
            layer = int(name.split(".")[2])
            if not stage * per_stage <= layer < (stage + 1) * per_stage:
                continue
            name = "decoder.layers.%d.%s" % (layer - stage * per_stage, name.split(".", 3)[3])
        elif name.startswith("embedding.") and stage != 0:
            continue
        elif (name.startswith("decoder.final_layernorm") or name.startswith("output_layer")) and stage != pp - 1:
            continue
        local[name] = tensor if tensor is None or not torch.is_tensor(tensor) else shard(name, tensor, rank, tp)
    if stage == pp - 1 and stage != 0 and "output_layer.weight" not in state:
        local["output_layer.weight"] = shard("output_layer.weight", state["embedding.word_embeddings.weight"], rank, tp)
    return local


def save_sharded(directory, model, tp=2, pp=2, **variant):
    """`model` cut for `tp` x `pp` ranks as Megatron-LM saves it (`stage_state`)."""
    state = dict(model.state_dict())
    for stage in range(pp):
        for rank in range(tp):
            save(directory, rank, stage, tp, pp, stage_state(state, stage, rank, tp, pp), **variant)


def record(model, name):
    """megatron-core's outputs on the fixture batch, into `name`."""
    generator = torch.Generator().manual_seed(11)
    tokens = torch.randint(0, VOCAB, (BATCH, SEQ), generator=generator)
    labels = torch.randint(0, VOCAB, (BATCH, SEQ), generator=generator)
    positions = torch.arange(SEQ).unsqueeze(0).expand(BATCH, -1)
    mask = torch.triu(torch.ones(1, 1, SEQ, SEQ), diagonal=1).bool()
    logits = model(tokens, positions, mask)
    losses = model(tokens, positions, mask, labels=labels)
    losses.mean().backward()
    gradients = {name: p.grad.double().norm().item() for name, p in model.named_parameters()}
    with open(os.path.join(OUT, name), "w") as file:
        json.dump({"tokens": tokens.tolist(), "labels": labels.tolist(), "losses": losses.tolist(),
                   "mean_loss": losses.mean().item(), "logits_first_positions": logits[0, :3].tolist(),
                   "gradient_norms": gradients}, file)
    print(name, "mean loss", losses.mean().item(), "parameters", len(gradients))


if __name__ == "__main__":
    main()

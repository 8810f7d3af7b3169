#!/usr/bin/env python3
"""Fixtures for reading Megatron-LM's `torch_dist` checkpoints (its default `--ckpt-format`):
the models of megatron_lm_fixtures.py saved by megatron-core's own `dist_checkpointing.save`, as
Megatron-LM's `save_checkpoint` calls it (`{'args', 'checkpoint_version', 'iteration', 'model':
model.sharded_state_dict()}`), from real TP x PP ranks (gloo processes on the CPU).

Writes into Tests/TrainingTests/Fixtures/megatron-lm:
  dist-tp1/                    the base model (expected.json), one rank
  dist-tp2pp2/                 the base model from 2 tensor-parallel ranks x 2 pipeline stages
                               (the last stage's output layer tied to the word embedding)
  dist-tp2pp2-untied-eps1e-6/  the untied model of expected-untied-eps1e-6.json, TP 2 x PP 2
  dist-tp1-bf16/               the base model with bf16 parameters (Megatron's --bf16 model)
  dist-damaged/                dist-tp1's .metadata with impossible sizes (damaged_metadata())
  dist-tp1-common-inside/      the base model saved by a newer megatron-core (GitHub main, not on
                               PyPI yet), which keeps the common state inside the sharded files
                               (a bytes entry 'common_state/shard_0_1': torch.save of [common])
                               instead of common.pt; written only when MEGATRON_CORE_SOURCE names
                               a checkout's root (its megatron/core is imported instead of PyPI's)
each as latest_checkpointed_iteration.txt and iter_0000007/ holding megatron-core's files:
metadata.json, common.pt (args, iteration), .metadata (torch.distributed.checkpoint's pickled
Metadata) and __R_N.distcp (each chunk a torch.save blob at an offset). The layers are stacked on
a leading axis of size num_layers, each layer a chunk; a TP-split tensor's chunks are the ranks'
shards at their global offsets.

megatron-core's writer needs two CUDA calls replaced on the CPU (torch.cuda.synchronize and
current_device), psutil, and one OpenMP thread (its writer forks).

    pip install megatron-core==0.16.1 torch numpy psutil
    OMP_NUM_THREADS=1 python3 scripts/reference/megatron_lm_dist_fixtures.py
    MEGATRON_CORE_SOURCE=/path/to/Megatron-LM OMP_NUM_THREADS=1 python3 scripts/reference/megatron_lm_dist_fixtures.py

(dist-tp1-common-inside was written from Megatron-LM commit d98e8a64dd.)
"""
import os
import shutil
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

if os.environ.get("MEGATRON_CORE_SOURCE"):  # read here so that the spawned ranks import it too
    sys.path.insert(0, os.environ["MEGATRON_CORE_SOURCE"])
sys.path.insert(1 if os.environ.get("MEGATRON_CORE_SOURCE") else 0, os.path.dirname(os.path.abspath(__file__)))
import megatron_lm_fixtures as base  # noqa: E402

ITERATION = base.ITERATION


def run(rank, world, tp, pp, directory, variant, port):
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    from megatron.core import dist_checkpointing, parallel_state, utils
    from megatron.core.tensor_parallel import random as megatron_random
    torch.cuda.synchronize = lambda *args, **kwargs: None
    torch.cuda.current_device = lambda: "cpu"
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # the tied embedding's all-reduce moves it

    def get_tensor(self, tensor_shape, dtype, name, mem_alloc_context=None):
        return torch.empty(tensor_shape, dtype=dtype)

    utils.GlobalMemoryBuffer.get_tensor = get_tensor
    megatron_random.initialize_rng_tracker(inference_rng_tracker=True)
    # The whole model first (TP 1: every process draws the same weights), then this rank's part.
    parallel_state.initialize_model_parallel(1, 1)
    whole = base.build_model(**variant["model"]).state_dict()
    parallel_state.destroy_model_parallel()
    parallel_state.initialize_model_parallel(tp, pp)
    stage, tp_rank = parallel_state.get_pipeline_model_parallel_rank(), parallel_state.get_tensor_model_parallel_rank()
    model = build_stage(stage == 0, stage == pp - 1, pp, **variant["model"])
    local = {name: tensor for name, tensor in base.stage_state(whole, stage, tp_rank, tp, pp).items()
             if not name.endswith("._extra_state")}
    result = model.load_state_dict(local, strict=False)
    assert not result.unexpected_keys and all(key.endswith("._extra_state") for key in result.missing_keys), result
    if variant.get("bf16"):
        model = model.to(torch.bfloat16)
    state = {"args": base.args(tp, pp, **variant["args"]), "checkpoint_version": 3.0, "iteration": ITERATION,
             "model": model.sharded_state_dict()}
    if variant.get("bf16"):
        state["args"].bf16, state["args"].params_dtype = True, torch.bfloat16
    folder = os.path.join(directory, f"iter_{ITERATION:07d}")
    os.makedirs(folder, exist_ok=True)
    dist_checkpointing.save(state, folder, sharded_strategy=("torch_dist", 1))
    dist.barrier()
    if rank == 0:
        with open(os.path.join(directory, "latest_checkpointed_iteration.txt"), "w") as file:
            file.write(str(ITERATION))
    dist.destroy_process_group()


def build_stage(first, last, pp, exact_gelu=False, ffn=4 * base.HIDDEN, untied=False, epsilon=1e-5):
    from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec
    from megatron.core.models.gpt.gpt_model import GPTModel
    from megatron.core.transformer.transformer_config import TransformerConfig
    config = TransformerConfig(num_layers=base.LAYERS, hidden_size=base.HIDDEN, num_attention_heads=base.HEADS,
                               ffn_hidden_size=ffn, use_cpu_initialization=True, hidden_dropout=0.0, attention_dropout=0.0,
                               layernorm_epsilon=epsilon, bias_activation_fusion=not exact_gelu, params_dtype=torch.float32,
                               pipeline_model_parallel_size=pp, pipeline_dtype=torch.float32)
    return GPTModel(config, transformer_layer_spec=get_gpt_layer_local_spec(), vocab_size=base.VOCAB,
                    max_sequence_length=base.POSITIONS, share_embeddings_and_output_weights=not untied,
                    position_embedding_type="learned_absolute", pre_process=first, post_process=last)


def save(name, tp, pp, port, **variant):
    directory = os.path.join(base.OUT, name)
    shutil.rmtree(directory, ignore_errors=True)
    variant.setdefault("model", {})
    variant.setdefault("args", dict(variant["model"]))
    mp.spawn(run, args=(tp * pp, tp, pp, directory, variant, port), nprocs=tp * pp, join=True)
    print(name, sorted(os.listdir(os.path.join(directory, f"iter_{ITERATION:07d}"))))


def damaged_metadata():
    """dist-tp1's .metadata with the word embedding's size and chunk changed: to 2^40 x 2^40 (a
    count that overflows 64 bits), and to 2^20 x 2^20 (more elements than its chunk's bytes)."""
    import pickle
    folder = os.path.join(base.OUT, "dist-damaged")
    os.makedirs(folder, exist_ok=True)
    for name, side in [("overflow.metadata", 2 ** 40), ("oversized.metadata", 2 ** 20)]:
        with open(os.path.join(base.OUT, "dist-tp1", f"iter_{ITERATION:07d}", ".metadata"), "rb") as file:
            metadata = pickle.load(file)
        entry = metadata.state_dict_metadata["embedding.word_embeddings.weight"]
        entry.size = torch.Size([side, side])
        entry.chunks[0].sizes = torch.Size([side, side])
        with open(os.path.join(folder, name), "wb") as file:
            pickle.dump(metadata, file)


def main():
    if os.environ.get("MEGATRON_CORE_SOURCE"):
        return save("dist-tp1-common-inside", 1, 1, 29545)
    save("dist-tp1", 1, 1, 29541)
    damaged_metadata()
    save("dist-tp2pp2", 2, 2, 29542)
    save("dist-tp2pp2-untied-eps1e-6", 2, 2, 29543, model={"untied": True, "epsilon": 1e-6})
    save("dist-tp1-bf16", 1, 1, 29544, bf16=True)


if __name__ == "__main__":
    main()

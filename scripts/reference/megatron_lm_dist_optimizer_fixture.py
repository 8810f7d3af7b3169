#!/usr/bin/env python3
"""Fixtures for importing the optimizer state of Megatron-LM's `torch_dist` checkpoints: the runs of
megatron_lm_optimizer_fixture.py (fp32) and megatron_lm_bf16_optimizer_fixture.py (--bf16), saved
as Megatron-LM's save_checkpoint does with --ckpt-format torch_dist (the unwrapped model's
sharded_state_dict, the optimizer's sharded_state_dict over it, the scheduler; rng_state left out):

  dist-tp1-optim/        fp32, the plain optimizer: model-space tensors
                         optimizer.state.{exp_avg,exp_avg_sq}.<model key> (layers stacked as the
                         model's), the step in common.pt's optimizer.optimizer.state.common_step
  dist-tp1-distopt/      fp32 --use-distributed-optimizer: the flat buffers below, keyed
                         dtype_(torch.float32, torch.float32), no 'param' read (the weights are the model's)
  dist-tp1-bf16-optim/   --bf16, the plain optimizer: the same plus optimizer.state.fp32_param.<key>
  dist-tp1-bf16-distopt-fully-reshardable/   the same with --dist-ckpt-optim-fully-reshardable
                         (sharding 'fully_reshardable'): model-space tensors
                         optimizer.state.{param,exp_avg,exp_avg_sq}.<model key>, 'param' the fp32
                         masters, the step in the common state's optimizer param_groups
  dist-tp1-bf16-distopt-buckets/   the same with --overlap-grad-reduce --ddp-bucket-size 10000:
                         the buffer in 4 buckets, bucket_idx_0..3 (megatron-core 0.16.1 warns that
                         its fully_reshardable save of such a buffer pads parameters with zeros, and
                         it does misplace them, so only dp_reshardable is written)
  dist-tp1-bf16-distopt/ --bf16 --use-distributed-optimizer with Megatron-LM's default
                         'dp_reshardable' sharding: the flat buffers
                         optimizer.distributed.dp_group_idx_0.gbuf_idx_0.dtype_(torch.bfloat16,
                         torch.float32).bucket_idx_0.{param,exp_avg,exp_avg_sq} (each parameter a
                         chunk at its offset in megatron-core's parameter buffer) and byte entries
                         ...optimizer (param groups with the step) and ...per_bucket_numel_unpadded
  dist-tp1-fp16-optim/, dist-tp1-fp16-distopt/   the --fp16 runs of megatron_lm_bf16_optimizer_fixture.py
                         (a dynamic loss scaler whose state is in the common state), saved so:
                         fp32_param model-space tensors, and the dp_reshardable buffer keyed
                         dtype_(torch.float16, torch.float16)
  expected-dist-<name>.json   as the legacy fixtures' json
  dist-tp2-bf16-distopt/, dist-tp2-bf16-distopt-fully-reshardable/   the --bf16 distributed
                         optimizer's run at TP 2 (two gloo ranks; the same whole model cut in two),
                         its state after STEPS steps saved twice: dp_reshardable (one flat buffer per
                         TP rank, dp_group_idx_0 and _1) and fully_reshardable (model space), so
                         that the two must read alike (`tp2`)
  dist-tp2pp2dp2-bf16-distopt/, dist-tp2pp2dp2-bf16-distopt-fully-reshardable/   the same at
                         TP 2 x PP 2 x DP 2 (eight gloo ranks, a 4-layer model, seeded gradients in
                         place of a pipeline schedule): a buffer per TP x PP rank (dp_group_idx =
                         TP rank + 2 x stage), the word embedding and the last stage's tied copy
                         each in a bucket of its own, each DP rank's shard its own chunks (`tp2pp2dp2`);
                         and dist-tp2pp2dp2-bf16-distopt-legacy/, the same state saved as
                         --ckpt-format torch does (distrib_optim.pt per TP x PP rank)
  dist-tp2pp2vp2dp1-bf16-distopt/, ...-fully-reshardable/   the same at TP 2 x PP 2 with an
                         interleaved pipeline of 2 model chunks per stage (four gloo ranks): a
                         buffer per model chunk, gbuf_idx_<chunk> (`tp2pp2vp2`)

Names given on the command line (optim, distopt, bf16-optim, bf16-distopt,
bf16-distopt-fully-reshardable, bf16-distopt-buckets, fp16-optim, fp16-distopt, tp2, tp2pp2dp2, tp2pp2vp2) write
only those.

    pip install megatron-core==0.16.1 torch numpy psutil
    OMP_NUM_THREADS=1 python3 scripts/reference/megatron_lm_dist_optimizer_fixture.py
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import megatron_lm_bf16_optimizer_fixture as bf16  # noqa: E402
import megatron_lm_fixtures as fixtures  # noqa: E402
import megatron_lm_optimizer_fixture as fp32  # noqa: E402

OUT = fixtures.OUT
STEPS = fp32.STEPS
fp32_setup, fp32_checkpoint_args = fp32.setup, fp32.checkpoint_args
SHARDING = {"type": "dp_reshardable"}  # the distributed optimizer's sharding of the run being saved


def save(directory, distributed, model, ddp, optimizer, scheduler):
    """What Megatron-LM's save_checkpoint writes with --ckpt-format torch_dist (TP 1, PP 1, DP 1)."""
    from megatron.core import dist_checkpointing
    folder = os.path.join(directory, f"iter_{STEPS:07d}")
    os.makedirs(folder, exist_ok=True)
    args = fp32.checkpoint_args(distributed)
    args.ckpt_format = "torch_dist"
    state = {"args": args, "checkpoint_version": 3.0, "iteration": STEPS, "model": model.sharded_state_dict()}
    metadata = {"distrib_optim_sharding_type": SHARDING["type"], "singleton_local_shards": False} if distributed else {}
    state["optimizer"] = optimizer.sharded_state_dict(state["model"], metadata=metadata)
    state["opt_param_scheduler"] = scheduler.state_dict()
    dist_checkpointing.save(state, folder, sharded_strategy=("torch_dist", 1))
    with open(os.path.join(directory, "latest_checkpointed_iteration.txt"), "w") as file:
        file.write(str(STEPS))
    return folder


def start_rank(rank, world, port):
    """A spawned gloo rank made ready to run megatron-core on the CPU."""
    import torch.distributed as dist
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    fp32.cpu_shim()
    from megatron.core import utils
    from megatron.core.tensor_parallel import random as megatron_random
    torch.cuda.synchronize = lambda *args, **kwargs: None
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    utils.GlobalMemoryBuffer.get_tensor = lambda self, shape, dtype, name, mem_alloc_context=None: torch.empty(shape, dtype=dtype)
    megatron_random.initialize_rng_tracker(inference_rng_tracker=True)


def save_both_shardings(rank, name, args, models, optimizer):
    """The model's sharded state dicts (`models()`, made afresh for each save: saving consumes
    them) with the distributed optimizer's state saved twice, as `name` (dp_reshardable) and
    `name`-fully-reshardable."""
    import torch.distributed as dist
    from megatron.core import dist_checkpointing
    for sharding, directory in [("dp_reshardable", name), ("fully_reshardable", name + "-fully-reshardable")]:
        state = dict(models(), args=args, checkpoint_version=3.0, iteration=STEPS)
        state["optimizer"] = optimizer.sharded_state_dict(
            {k: v for k, v in state.items() if k.startswith("model")},
            metadata={"distrib_optim_sharding_type": sharding, "singleton_local_shards": False})
        folder = os.path.join(OUT, directory, f"iter_{STEPS:07d}")
        os.makedirs(folder, exist_ok=True)
        dist_checkpointing.save(state, folder, sharded_strategy=("torch_dist", 1))
        if rank == 0:
            with open(os.path.join(OUT, directory, "latest_checkpointed_iteration.txt"), "w") as file:
                file.write(str(STEPS))
        dist.barrier()
    dist.destroy_process_group()


def save_legacy(rank, name, args, models, optimizer):
    """The same state as Megatron-LM's --ckpt-format torch saves it: per TP x PP rank a folder
    mp_rank_TT[_PPP] with model_optim_rng.pt (written by DP rank 0) and distrib_optim.pt (the
    distributed optimizer's buffers gathered over the DP ranks: save_parameter_state)."""
    import torch.distributed as dist
    from megatron.core import parallel_state
    stage, tp_rank = parallel_state.get_pipeline_model_parallel_rank(), parallel_state.get_tensor_model_parallel_rank()
    pp = parallel_state.get_pipeline_model_parallel_world_size()
    folder = os.path.join(OUT, name, f"iter_{STEPS:07d}", f"mp_rank_{tp_rank:02d}" + (f"_{stage:03d}" if pp > 1 else ""))
    os.makedirs(folder, exist_ok=True)
    legacy = argparse.Namespace(**vars(args))
    legacy.ckpt_format = "torch"
    if parallel_state.get_data_parallel_rank() == 0:
        torch.save(dict(models, args=legacy, checkpoint_version=3.0, iteration=STEPS, optimizer=optimizer.state_dict()),
                   os.path.join(folder, "model_optim_rng.pt"))
    optimizer.save_parameter_state(os.path.join(folder, "distrib_optim.pt"))
    if rank == 0:
        with open(os.path.join(OUT, name, "latest_checkpointed_iteration.txt"), "w") as file:
            file.write(str(STEPS))
    dist.barrier()


def tensor_parallel_rank(rank, world):
    """One of the TP 2 run's ranks: the whole model drawn at TP 1, this rank's cut loaded into the
    bf16 model and its optimizer's masters, STEPS steps, then both saves."""
    start_rank(rank, world, 29571)
    from megatron.core import parallel_state
    fixtures.LAYERS, fixtures.VOCAB, fixtures.ITERATION = fp32.LAYERS, fp32.VOCAB, STEPS
    parallel_state.initialize_model_parallel(1, 1)
    whole = fixtures.build_model().state_dict()
    parallel_state.destroy_model_parallel()
    parallel_state.initialize_model_parallel(world, 1)
    tp_rank = parallel_state.get_tensor_model_parallel_rank()
    model, ddp, optimizer, scheduler = bf16.setup(True)
    local = fixtures.stage_state(whole, 0, tp_rank, world, 1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.copy_(local[name].to(param.dtype))
    optimizer.chained_optimizers[0].reload_model_params()  # the fp32 masters from the loaded weights
    tokens, labels = fp32.batch()
    for _ in range(STEPS):
        fp32.train_step(ddp, optimizer, scheduler, tokens, labels)
    args = bf16.checkpoint_args(True)
    args.ckpt_format, args.tensor_model_parallel_size = "torch_dist", world
    save_both_shardings(rank, "dist-tp2-bf16-distopt", args, lambda: {"model": model.sharded_state_dict()}, optimizer)


def pipeline_rank(rank, world, tp, pp, vp=1):
    """One rank of a TP `tp` x PP `pp` x DP (world / tp / pp) run of the --bf16 distributed
    optimizer on a 4-layer model, with `vp` > 1 an interleaved pipeline (each stage `vp` model
    chunks, chunk c of stage s holding layers (c pp + s) L / (pp vp) on, each chunk its own DDP
    buffer, bucketing off after the first chunk as Megatron-LM builds them): each rank's slice of
    the whole model (the last stage holds the tied output layer's copy, a parameter in its own
    bucket), STEPS optimizer steps on seeded gradients in place of a pipeline schedule (the same
    on every data-parallel rank, and on the tied copy as on the word embedding, as their
    all-reduces would leave them; replicated tensors the same on every TP rank), then the state
    saved dp_reshardable (a flat buffer per TP x PP rank and model chunk, each cut in DP shards)
    and fully_reshardable (model space)."""
    import zlib
    start_rank(rank, world, 29591)
    from megatron.core import parallel_state
    from megatron.core.distributed import DistributedDataParallel, DistributedDataParallelConfig
    from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec
    from megatron.core.models.gpt.gpt_model import GPTModel
    from megatron.core.optimizer import OptimizerConfig, get_megatron_optimizer
    from megatron.core.transformer.module import Float16Module
    from megatron.core.transformer.transformer_config import TransformerConfig
    fixtures.LAYERS, fixtures.VOCAB, fixtures.ITERATION = 4, fp32.VOCAB, STEPS
    parallel_state.initialize_model_parallel(1, 1)
    whole = fixtures.build_model().state_dict()
    parallel_state.destroy_model_parallel()
    parallel_state.initialize_model_parallel(tp, pp, virtual_pipeline_model_parallel_size=vp if vp > 1 else None)
    stage, tp_rank = parallel_state.get_pipeline_model_parallel_rank(), parallel_state.get_tensor_model_parallel_rank()
    per_chunk = fixtures.LAYERS // (pp * vp)
    chunks, ddps = [], []
    for chunk in range(vp):
        first, last = stage == 0 and chunk == 0, stage == pp - 1 and chunk == vp - 1
        config = TransformerConfig(num_layers=fixtures.LAYERS, hidden_size=fixtures.HIDDEN, num_attention_heads=fixtures.HEADS,
                                   ffn_hidden_size=4 * fixtures.HIDDEN, use_cpu_initialization=True, hidden_dropout=0.0,
                                   attention_dropout=0.0, params_dtype=torch.float32, tensor_model_parallel_size=tp,
                                   pipeline_model_parallel_size=pp, virtual_pipeline_model_parallel_size=vp if vp > 1 else None,
                                   pipeline_dtype=torch.float32)
        model = GPTModel(config, transformer_layer_spec=get_gpt_layer_local_spec(), vocab_size=fixtures.VOCAB,
                         max_sequence_length=fixtures.POSITIONS, position_embedding_type="learned_absolute",
                         share_embeddings_and_output_weights=True, pre_process=first, post_process=last,
                         vp_stage=chunk if vp > 1 else None)
        offset = (chunk * pp + stage) * per_chunk  # the chunk's first layer
        local = {}
        for name, tensor in whole.items():
            if name.endswith("._extra_state"):
                continue
            if name.startswith("decoder.layers."):
                layer, rest = name.split(".", 3)[2:]
                if not offset <= int(layer) < offset + per_chunk:
                    continue
                name = "decoder.layers.%d.%s" % (int(layer) - offset, rest)
            elif name.startswith("embedding.") and not first:
                continue
            elif name.startswith(("decoder.final_layernorm", "output_layer")) and not last:
                continue
            local[name] = fixtures.shard(name, tensor, tp_rank, tp)
        if last and not first:
            local["output_layer.weight"] = fixtures.shard("output_layer.weight", whole["embedding.word_embeddings.weight"], tp_rank, tp)
        missing, unexpected = model.load_state_dict(local, strict=False)
        assert not unexpected and all(n.endswith("._extra_state") for n in missing), (missing, unexpected)
        model.config.bf16, model.config.params_dtype = True, torch.bfloat16
        ddp_config = DistributedDataParallelConfig(grad_reduce_in_fp32=True, use_distributed_optimizer=True)
        ddps.append(DistributedDataParallel(model.config, ddp_config, Float16Module(model.config, model), disable_bucketing=chunk > 0))
        chunks.append((model, offset))
    config = OptimizerConfig(optimizer="adam", lr=fp32.LR, weight_decay=fp32.WEIGHT_DECAY, adam_beta1=fp32.BETA1, adam_beta2=fp32.BETA2,
                             adam_eps=fp32.EPS, clip_grad=fp32.CLIP_GRAD, use_distributed_optimizer=True, bf16=True,
                             params_dtype=torch.bfloat16)
    optimizer = get_megatron_optimizer(config, ddps)
    for step in range(STEPS):
        for (model, offset), ddp in zip(chunks, ddps):
            ddp.zero_grad_buffer()
            for name, param in model.named_parameters():
                key = "embedding.word_embeddings.weight" if name == "output_layer.weight" else name
                if key.startswith("decoder.layers."):
                    layer, rest = key.split(".", 3)[2:]
                    key = "decoder.layers.%d.%s" % (int(layer) + offset, rest)
                sharded = getattr(param, "tensor_model_parallel", False)
                seed = zlib.crc32(f"{key}/{tp_rank if sharded else 0}/{step}".encode())
                param.main_grad.copy_(torch.randn(param.shape, generator=torch.Generator().manual_seed(seed)))
        succeeded, _, _ = optimizer.step()
        assert succeeded
    name = f"dist-tp{tp}pp{pp}" + (f"vp{vp}" if vp > 1 else "") + f"dp{world // (tp * pp)}-bf16-distopt"
    args = bf16.checkpoint_args(True)
    vars(args).update(ckpt_format="torch_dist", num_layers=fixtures.LAYERS, tensor_model_parallel_size=tp,
                      pipeline_model_parallel_size=pp, data_parallel_size=world // (tp * pp), world_size=world)
    if vp > 1:
        vars(args).update(virtual_pipeline_model_parallel_size=vp, num_layers_per_virtual_pipeline_stage=per_chunk)
        def models():
            return {"model%d" % i: model.sharded_state_dict() for i, (model, _) in enumerate(chunks)}
    else:
        def models():
            return {"model": chunks[0][0].sharded_state_dict()}
    if vp == 1:
        save_legacy(rank, name + "-legacy", args, {"model": chunks[0][0].state_dict_for_save_checkpoint()}, optimizer)
    save_both_shardings(rank, name, args, models, optimizer)


def main():
    fp32.cpu_shim()
    fixtures.megatron_core()
    torch.cuda.synchronize = lambda *args, **kwargs: None
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # fully_reshardable gathers through .cuda()
    fp32.save = save
    runs = [("fp32", False, "optim"), ("fp32", True, "distopt"), ("bf16", False, "bf16-optim"), ("bf16", True, "bf16-distopt"),
            ("bf16", True, "bf16-distopt-fully-reshardable"), ("bf16", True, "bf16-distopt-buckets"),
            ("fp16", False, "fp16-optim"), ("fp16", True, "fp16-distopt")]
    only = sys.argv[1:]  # names to write, all when none are given
    if not only or "tp2" in only:
        torch.multiprocessing.spawn(tensor_parallel_rank, args=(2,), nprocs=2, join=True)
    if not only or "tp2pp2dp2" in only:
        torch.multiprocessing.spawn(pipeline_rank, args=(8, 2, 2), nprocs=8, join=True)
    if not only or "tp2pp2vp2" in only:
        torch.multiprocessing.spawn(pipeline_rank, args=(4, 2, 2, 2), nprocs=4, join=True)
    for precision, distributed, name in runs:
        if only and name not in only:
            continue
        SHARDING["type"] = "fully_reshardable" if name.endswith("fully-reshardable") else "dp_reshardable"
        fp32.LOSS_SCALING["on"] = precision == "fp16"
        if precision != "fp32":
            buckets = 10000 if name.endswith("buckets") else None
            fp32.setup = lambda distributed, buckets=buckets, precision=precision: bf16.setup(distributed, buckets, precision)
            fp32.checkpoint_args = lambda distributed, buckets=buckets, precision=precision: bf16.checkpoint_args(distributed, buckets, precision)
        else:
            fp32.setup, fp32.checkpoint_args = fp32_setup, fp32_checkpoint_args
        fp32.run(distributed, os.path.join(OUT, f"dist-tp1-{name}"), f"expected-dist-{name}.json")


if __name__ == "__main__":
    main()

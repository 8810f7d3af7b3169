#!/usr/bin/env python3
"""Fixtures for importing Adam optimizer state from Megatron-LM legacy checkpoints: megatron-core's
own optimizer (get_megatron_optimizer: torch AdamW inside FP32Optimizer or DistributedOptimizer,
inside a ChainedOptimizer) trains megatron-core's GPTModel for STEPS iterations on the CPU, the
way Megatron-LM's train_step does, and the result is saved as Megatron-LM's save_checkpoint
writes it with --ckpt-format torch.

The model is the one of megatron_lm_fixtures.py (same build_model(), seed and perturbed
LayerNorms and biases) with 2 layers and a vocabulary of 128 instead of 4 and 2112, so that the
three (four with the distributed optimizer) copies of every parameter stay under 1.5 MB.

megatron-core's DDP wrapper and optimizers run on the CPU (gloo, one rank) with three patches
besides megatron_lm_fixtures.megatron_core()'s two:
  - torch.tensor/zeros/empty/ones/full given device='cuda...' allocate on the CPU instead
    (FP32Optimizer's loss scale, clip_grads' overflow buffers);
  - torch.cuda.current_device() answers 'cpu' (the DDP param/grad buffers);
  - Tensor.type() without arguments names a CPU tensor as its CUDA type ('torch.cuda.FloatTensor'),
    for the type checks in clip_grad_by_total_norm_fp32 and DistributedOptimizer.

Writes into Tests/TrainingTests/Fixtures/megatron-lm:
  tp1-optim/    latest_checkpointed_iteration.txt, iter_0000003/mp_rank_00/model_optim_rng.pt:
                {'args', 'checkpoint_version': 3.0, 'iteration': 3, 'model', 'optimizer' (torch
                AdamW's state_dict: ids numbered over param_groups in order), 'opt_param_scheduler',
                'rng_state'}
  tp1-distopt/  the same with --use-distributed-optimizer: 'optimizer' holds only
                {'optimizer': {'param_groups': [...]}} and iter_0000003/mp_rank_00/distrib_optim.pt
                the flattened param / exp_avg / exp_avg_sq of the DDP buffer (parameters in reverse
                named_parameters order, each starting at a multiple of 64 elements)
  expected-optim.json, expected-distopt.json   per parameter (megatron-core name): its id, group,
                weight-decay flag, step, norms and first values of exp_avg / exp_avg_sq / the
                parameter (and its [start, end) in the flat buffer for the distributed optimizer),
                and the loss and parameters after one more step, to check a resumed step

    pip install megatron-core==0.16.1 torch numpy
    python3 scripts/reference/megatron_lm_optimizer_fixture.py
"""
import functools
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import megatron_lm_fixtures as fixtures  # noqa: E402

OUT = fixtures.OUT
STEPS = 3
LAYERS, VOCAB = 2, 128
LR, MIN_LR, WEIGHT_DECAY, BETA1, BETA2, EPS, CLIP_GRAD = 1e-3, 1e-4, 0.1, 0.9, 0.95, 1e-8, 1.0
TRAIN_ITERS, LR_WARMUP_ITERS, LR_DECAY_STYLE = 10, 0, "cosine"
MICRO_BATCH = GLOBAL_BATCH = fixtures.BATCH  # one micro-batch, data-parallel size 1


def cpu_shim():
    """What megatron-core's DDP buffers, optimizers and gradient clipping need to run on the CPU."""
    def redirect(factory):
        @functools.wraps(factory)
        def wrapper(*args, **kwargs):
            if str(kwargs.get("device", "")).startswith("cuda"):
                kwargs["device"] = "cpu"
            return factory(*args, **kwargs)
        return wrapper

    for name in ("tensor", "zeros", "empty", "ones", "full"):
        setattr(torch, name, redirect(getattr(torch, name)))
    torch.cuda.current_device = lambda: "cpu"
    tensor_type = torch.Tensor.type

    def cuda_type(self, dtype=None, non_blocking=False, **kwargs):
        if dtype is None and not kwargs:
            name = tensor_type(self)
            return name if name.startswith("torch.cuda.") else name.replace("torch.", "torch.cuda.", 1)
        return tensor_type(self, dtype, non_blocking, **kwargs)

    torch.Tensor.type = cuda_type


def checkpoint_args(distributed):
    """Megatron-LM's arguments as validate_args leaves them, for this run."""
    args = fixtures.args(1, 1)
    vars(args).update(
        make_vocab_size_divisible_by=VOCAB,  # the fixture's own vocabulary, 128 = 1 x 128
        optimizer="adam", lr=LR, min_lr=MIN_LR, lr_decay_style=LR_DECAY_STYLE, lr_decay_iters=TRAIN_ITERS,
        lr_warmup_iters=LR_WARMUP_ITERS, lr_warmup_fraction=None, lr_warmup_init=0.0, lr_wsd_decay_iters=None,
        weight_decay=WEIGHT_DECAY, start_weight_decay=WEIGHT_DECAY, end_weight_decay=WEIGHT_DECAY,
        weight_decay_incr_style="constant", adam_beta1=BETA1, adam_beta2=BETA2, adam_eps=EPS, clip_grad=CLIP_GRAD,
        use_distributed_optimizer=distributed, bf16=False, fp16=False, loss_scale=None,
        accumulate_allreduce_grads_in_fp32=False, overlap_grad_reduce=False, overlap_param_gather=False,
        ddp_bucket_size=None, check_for_nan_in_loss_and_grad=True, decoupled_lr=None, decoupled_min_lr=None,
        override_opt_param_scheduler=False, use_checkpoint_opt_param_scheduler=False, train_iters=TRAIN_ITERS,
        micro_batch_size=MICRO_BATCH, global_batch_size=GLOBAL_BATCH, data_parallel_size=1, world_size=1,
        consumed_train_samples=STEPS * GLOBAL_BATCH, consumed_valid_samples=0, iteration=STEPS,
        no_save_optim=None, no_save_rng=None, ckpt_format="torch")
    return args


def setup(distributed):
    """The model wrapped in megatron-core's DDP, get_megatron_optimizer's optimizer and the
    OptimizerParamScheduler, as Megatron-LM's setup_model_and_optimizer builds them."""
    from megatron.core.distributed import DistributedDataParallel, DistributedDataParallelConfig
    from megatron.core.optimizer import OptimizerConfig, get_megatron_optimizer
    from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler
    model = fixtures.build_model()
    ddp_config = DistributedDataParallelConfig(grad_reduce_in_fp32=False, overlap_grad_reduce=False,
                                               use_distributed_optimizer=distributed, check_for_nan_in_grad=True)
    ddp = DistributedDataParallel(model.config, ddp_config, model)
    ddp.broadcast_params()
    config = OptimizerConfig(optimizer="adam", lr=LR, min_lr=MIN_LR, weight_decay=WEIGHT_DECAY, adam_beta1=BETA1,
                             adam_beta2=BETA2, adam_eps=EPS, clip_grad=CLIP_GRAD, use_distributed_optimizer=distributed,
                             params_dtype=torch.float32)
    optimizer = get_megatron_optimizer(config, [ddp])
    scheduler = OptimizerParamScheduler(
        optimizer, init_lr=0.0, max_lr=LR, min_lr=MIN_LR, lr_warmup_steps=LR_WARMUP_ITERS * GLOBAL_BATCH,
        lr_decay_steps=TRAIN_ITERS * GLOBAL_BATCH, lr_decay_style=LR_DECAY_STYLE, start_wd=WEIGHT_DECAY,
        end_wd=WEIGHT_DECAY, wd_incr_steps=TRAIN_ITERS * GLOBAL_BATCH, wd_incr_style="constant",
        use_checkpoint_opt_param_scheduler=False, override_opt_param_scheduler=False)
    return model, ddp, optimizer, scheduler


def batch():
    generator = torch.Generator().manual_seed(11)
    tokens = torch.randint(0, VOCAB, (fixtures.BATCH, fixtures.SEQ), generator=generator)
    labels = torch.randint(0, VOCAB, (fixtures.BATCH, fixtures.SEQ), generator=generator)
    return tokens, labels


LOSS_SCALING = {"on": False}  # whether the run is --fp16 (its records then carry the scale and skips)


def train_step(ddp, optimizer, scheduler, tokens, labels):
    """One iteration of Megatron-LM's train_step: zero the grad buffer, forward and backward of
    the mean per-token loss (what loss_func / num_tokens gives with a full loss mask),
    finalize_model_grads, optimizer.step() (clipping at CLIP_GRAD), scheduler.step(global batch)."""
    from megatron.core.distributed import finalize_model_grads
    positions = torch.arange(fixtures.SEQ).unsqueeze(0).expand(fixtures.BATCH, -1)
    mask = torch.triu(torch.ones(1, 1, fixtures.SEQ, fixtures.SEQ), diagonal=1).bool()
    ddp.zero_grad_buffer()
    optimizer.zero_grad()
    lr = optimizer.param_groups[0]["lr"]
    loss = ddp(tokens, positions, mask, labels=labels).mean()
    scale = optimizer.get_loss_scale().item()  # forward_step scales the loss by it (1 outside --fp16)
    (loss * scale).backward()
    finalize_model_grads([ddp])
    success, grad_norm, _ = optimizer.step()
    record = {"loss": loss.item(), "grad_norm": grad_norm, "lr": lr}
    if LOSS_SCALING["on"]:  # --fp16: an overflowing iteration is skipped and the schedule stays
        record.update(loss_scale=scale, skipped=not success)
    else:
        assert success
    if success:
        scheduler.step(increment=GLOBAL_BATCH)
    return record


def adam_state(optimizer, model):
    """name -> (group index, torch optimizer state of the parameter, what the optimizer updates:
    the parameter, its shard (distributed optimizer) or its fp32 master (mixed precision))."""
    inner = optimizer.chained_optimizers[0]
    names = {p: n for n, p in model.named_parameters()}
    state = {}
    if hasattr(inner, "model_param_group_index_map"):  # DistributedOptimizer: its main params are shards
        for param, (group, order) in inner.model_param_group_index_map.items():
            main = inner.optimizer.param_groups[group]["params"][order]
            state[names[param]] = (group, inner.optimizer.state[main], main)
    elif hasattr(inner, "fp32_from_float16_groups"):  # mixed precision: fp32 masters, in group order
        for group, (params, masters) in enumerate(zip(inner.float16_groups, inner.fp32_from_float16_groups)):
            for param, main in zip(params, masters):
                state[names[param]] = (group, inner.optimizer.state[main], main)
    else:
        for group, param_group in enumerate(inner.optimizer.param_groups):
            for param in param_group["params"]:
                state[names[param]] = (group, inner.optimizer.state[param], param)
    return state


def first(tensor, count=4):
    return tensor.detach().reshape(-1)[:count].tolist()


def norm(tensor):
    return tensor.detach().double().norm().item()


def save(directory, distributed, model, ddp, optimizer, scheduler):
    """What Megatron-LM's save_checkpoint writes (--ckpt-format torch, TP 1, PP 1, DP 1)."""
    path = os.path.join(directory, f"iter_{STEPS:07d}", "mp_rank_00")
    os.makedirs(path, exist_ok=True)
    torch.save({"args": checkpoint_args(distributed), "checkpoint_version": 3.0, "iteration": STEPS,
                "model": ddp.state_dict_for_save_checkpoint(), "optimizer": optimizer.state_dict(),
                "opt_param_scheduler": scheduler.state_dict(), "rng_state": fixtures.rng_state()},
               os.path.join(path, "model_optim_rng.pt"))
    if distributed:
        optimizer.save_parameter_state(os.path.join(path, "distrib_optim.pt"))
    with open(os.path.join(directory, "latest_checkpointed_iteration.txt"), "w") as file:
        file.write(str(STEPS))
    return path


def run(distributed, directory, json_name):
    fixtures.LAYERS, fixtures.VOCAB, fixtures.ITERATION = LAYERS, VOCAB, STEPS
    model, ddp, optimizer, scheduler = setup(distributed)
    tokens, labels = batch()
    history = [train_step(ddp, optimizer, scheduler, tokens, labels) for _ in range(STEPS)]
    path = save(directory, distributed, model, ddp, optimizer, scheduler)
    scaler = optimizer.chained_optimizers[0].grad_scaler.state_dict() if LOSS_SCALING["on"] else None

    # ids: torch's Optimizer.state_dict numbers the parameters 0, 1, ... over param_groups in order.
    inner = optimizer.chained_optimizers[0].optimizer
    state = adam_state(optimizer, model)
    # The optimizer's groups hold what it updates: the parameters, or their fp32 master copies.
    names = {held: n for n, (_, _, held) in state.items()}
    groups, ids = [], {}
    for index, group in enumerate(inner.param_groups):
        if distributed:
            members = [n for n, _ in model.named_parameters() if state[n][0] == index]
        else:
            members = [names[p] for p in group["params"]]
        for name in members:
            ids[name] = len(ids)
        groups.append({"index": index, "wd_mult": group["wd_mult"], "weight_decay": group["weight_decay"],
                       "lr": group["lr"], "params": members})
    buffer = ddp.buffers[0]
    parameters = {}
    for name, param in model.named_parameters():
        group, adam, held = state[name]
        entry = {"id": ids[name], "group": group, "shape": list(param.shape),
                 "weight_decay": inner.param_groups[group]["weight_decay"] > 0, "step": float(adam["step"]),
                 "exp_avg_norm": norm(adam["exp_avg"]), "exp_avg_sq_norm": norm(adam["exp_avg_sq"]),
                 "exp_avg_first4": first(adam["exp_avg"]), "exp_avg_sq_first4": first(adam["exp_avg_sq"]),
                 "param_norm": norm(held), "param_first4": first(held)}
        if distributed:
            start, end, bucket = buffer.param_index_map[param]
            entry.update(flat_start=start, flat_end=end, bucket=bucket)
        parameters[name] = entry

    # One more step from the saved state: what a resumed run's iteration STEPS + 1 gives.
    after = train_step(ddp, optimizer, scheduler, tokens, labels)
    state = adam_state(optimizer, model)
    next_step = dict(after, parameters={
        name: {"param_norm": norm(state[name][2]), "param_first4": first(state[name][2]),
               "exp_avg_norm": norm(state[name][1]["exp_avg"]), "exp_avg_sq_norm": norm(state[name][1]["exp_avg_sq"])}
        for name, _ in model.named_parameters()})
    expected = {"iteration": STEPS, "layers": LAYERS, "vocab": VOCAB, "distributed_optimizer": distributed,
                "tokens": tokens.tolist(), "labels": labels.tolist(), "steps": history,
                "opt_param_scheduler": scheduler_state_at_save(history),
                "param_groups": groups, "parameters": parameters, "next_step": next_step}
    if scaler is not None:  # the dynamic loss scaler as saved
        expected["grad_scaler"] = {"scale": scaler["scale"].item(), "growth_tracker": scaler["growth_tracker"],
                                   "hysteresis_tracker": scaler["hysteresis_tracker"]}
    if distributed:
        expected["flat_buffer"] = {"numel": buffer.numel, "numel_unpadded": buffer.numel_unpadded,
                                   "bucket_indices": [list(b) for b in buffer.bucket_indices]}
    with open(os.path.join(OUT, json_name), "w") as file:
        json.dump(expected, file, indent=1)
    print(directory, "losses", [h["loss"] for h in history], "next", after["loss"])
    return path


def scheduler_state_at_save(history):
    return {"max_lr": LR, "lr_warmup_steps": LR_WARMUP_ITERS * GLOBAL_BATCH, "num_steps": sum(not h.get("skipped") for h in history) * GLOBAL_BATCH,
            "lr_decay_style": LR_DECAY_STYLE, "lr_decay_steps": TRAIN_ITERS * GLOBAL_BATCH, "min_lr": MIN_LR,
            "start_wd": WEIGHT_DECAY, "end_wd": WEIGHT_DECAY, "wd_incr_style": "constant",
            "wd_incr_steps": TRAIN_ITERS * GLOBAL_BATCH}


def verify(path, json_name):
    """Reload what was written and compare it with the expected json."""
    with open(os.path.join(OUT, json_name)) as file:
        expected = json.load(file)
    saved = torch.load(os.path.join(path, "model_optim_rng.pt"), weights_only=False)
    assert saved["opt_param_scheduler"] == expected["opt_param_scheduler"], saved["opt_param_scheduler"]
    assert saved["iteration"] == STEPS
    parameters = expected["parameters"]
    if not expected["distributed_optimizer"]:
        by_id = {entry["id"]: name for name, entry in parameters.items()}
        groups = saved["optimizer"]["param_groups"]
        assert [g["params"] for g in groups] == [[parameters[n]["id"] for n in g["params"]] for g in expected["param_groups"]]
        for index, adam in saved["optimizer"]["state"].items():
            entry = parameters[by_id[index]]
            assert float(adam["step"]) == entry["step"] and list(adam["exp_avg"].shape) == entry["shape"]
            assert abs(norm(adam["exp_avg"]) - entry["exp_avg_norm"]) == 0.0
            assert abs(norm(adam["exp_avg_sq"]) - entry["exp_avg_sq_norm"]) == 0.0
            assert norm(saved["model"][by_id[index]]) == entry["param_norm"]
    else:
        flat = torch.load(os.path.join(path, "distrib_optim.pt"), weights_only=False)[0][(torch.float32, torch.float32)]
        for name, entry in parameters.items():
            start, end = entry["flat_start"], entry["flat_end"]
            assert norm(flat["exp_avg"][start:end]) == entry["exp_avg_norm"]
            assert norm(flat["exp_avg_sq"][start:end]) == entry["exp_avg_sq_norm"]
            assert norm(flat["param"][start:end]) == entry["param_norm"] == norm(saved["model"][name])
        for group in saved["optimizer"]["optimizer"]["param_groups"]:
            assert group["step"] == STEPS
    print("verified", path)


def main():
    cpu_shim()
    fixtures.megatron_core()
    plain = run(False, os.path.join(OUT, "tp1-optim"), "expected-optim.json")
    distributed = run(True, os.path.join(OUT, "tp1-distopt"), "expected-distopt.json")
    verify(plain, "expected-optim.json")
    verify(distributed, "expected-distopt.json")


if __name__ == "__main__":
    main()

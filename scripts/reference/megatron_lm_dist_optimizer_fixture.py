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
  dist-tp1-bf16-distopt/ --bf16 --use-distributed-optimizer with Megatron-LM's default
                         'dp_reshardable' sharding: the flat buffers
                         optimizer.distributed.dp_group_idx_0.gbuf_idx_0.dtype_(torch.bfloat16,
                         torch.float32).bucket_idx_0.{param,exp_avg,exp_avg_sq} (each parameter a
                         chunk at its offset in megatron-core's parameter buffer) and byte entries
                         ...optimizer (param groups with the step) and ...per_bucket_numel_unpadded
  expected-dist-<name>.json   as the legacy fixtures' json

Names given on the command line (optim, distopt, bf16-optim, bf16-distopt,
bf16-distopt-fully-reshardable) write only those.

    pip install megatron-core==0.16.1 torch numpy psutil
    OMP_NUM_THREADS=1 python3 scripts/reference/megatron_lm_dist_optimizer_fixture.py
"""
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


def main():
    fp32.cpu_shim()
    fixtures.megatron_core()
    torch.cuda.synchronize = lambda *args, **kwargs: None
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # fully_reshardable gathers through .cuda()
    fp32.save = save
    runs = [("fp32", False, "optim"), ("fp32", True, "distopt"), ("bf16", False, "bf16-optim"), ("bf16", True, "bf16-distopt"),
            ("bf16", True, "bf16-distopt-fully-reshardable")]
    only = sys.argv[1:]  # names to write, all when none are given
    for precision, distributed, name in runs:
        if only and name not in only:
            continue
        SHARDING["type"] = "fully_reshardable" if name.endswith("fully-reshardable") else "dp_reshardable"
        if precision == "bf16":
            fp32.setup, fp32.checkpoint_args = bf16.setup, bf16.checkpoint_args
        else:
            fp32.setup, fp32.checkpoint_args = fp32_setup, fp32_checkpoint_args
        fp32.run(distributed, os.path.join(OUT, f"dist-tp1-{name}"), f"expected-dist-{name}.json")


if __name__ == "__main__":
    main()

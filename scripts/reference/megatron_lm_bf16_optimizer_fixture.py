#!/usr/bin/env python3
"""Fixtures for importing a --bf16 run's optimizer state from Megatron-LM legacy checkpoints:
megatron_lm_optimizer_fixture.py's run (same model, batch, hyperparameters, STEPS iterations on
the CPU), with Megatron-LM's --bf16: the model wrapped in Float16Module (bf16 weights), the
gradients reduced in fp32 (--accumulate-allreduce-grads-in-fp32, which --bf16 turns on), and
get_megatron_optimizer's mixed-precision optimizers holding fp32 master copies:

  tp1-bf16-optim/    the plain one (Float16OptimizerWithFloat16Params): 'optimizer' is
                     {'optimizer': torch AdamW's state_dict over the fp32 masters,
                      'fp32_from_fp16_params': per parameter group, the masters in group order}
  tp1-bf16-distopt/  --use-distributed-optimizer: distrib_optim.pt's buffer is keyed
                     (torch.bfloat16, torch.float32) and its 'param' is the fp32 masters
  tp1-bf16-distopt-buckets/   the same with --overlap-grad-reduce --ddp-bucket-size 10000: the
                     gradient buffer in 4 buckets, distrib_optim.pt's flat tensors their unpadded
                     parts one after another (megatron-core's 'buckets_coalesced')
  expected-bf16-optim.json, expected-bf16-distopt.json, expected-bf16-distopt-buckets.json   as
                     the fp32 fixtures' json, 'param_*' being the fp32 master's figures (the bf16
                     weights are the masters rounded)

Names given on the command line (tp1-bf16-optim, ...) write only those.

    pip install megatron-core==0.16.1 torch numpy
    python3 scripts/reference/megatron_lm_bf16_optimizer_fixture.py
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import megatron_lm_fixtures as fixtures  # noqa: E402
import megatron_lm_optimizer_fixture as fp32  # noqa: E402

OUT = fixtures.OUT
fp32_checkpoint_args = fp32.checkpoint_args


def setup(distributed, bucket_size=None):
    """setup() of the fp32 fixture with Megatron-LM's --bf16 (and with `bucket_size`, its
    --overlap-grad-reduce --ddp-bucket-size: the gradient buffer split into buckets)."""
    from megatron.core.distributed import DistributedDataParallel, DistributedDataParallelConfig
    from megatron.core.optimizer import OptimizerConfig, get_megatron_optimizer
    from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler
    from megatron.core.transformer.module import Float16Module
    model = fixtures.build_model()
    model.config.bf16, model.config.params_dtype = True, torch.bfloat16
    wrapped = Float16Module(model.config, model)
    ddp_config = DistributedDataParallelConfig(grad_reduce_in_fp32=True, overlap_grad_reduce=bucket_size is not None, bucket_size=bucket_size,
                                               use_distributed_optimizer=distributed, check_for_nan_in_grad=True)
    ddp = DistributedDataParallel(model.config, ddp_config, wrapped)
    ddp.broadcast_params()
    config = OptimizerConfig(optimizer="adam", lr=fp32.LR, min_lr=fp32.MIN_LR, weight_decay=fp32.WEIGHT_DECAY,
                             adam_beta1=fp32.BETA1, adam_beta2=fp32.BETA2, adam_eps=fp32.EPS, clip_grad=fp32.CLIP_GRAD,
                             use_distributed_optimizer=distributed, bf16=True, params_dtype=torch.bfloat16)
    optimizer = get_megatron_optimizer(config, [ddp])
    scheduler = OptimizerParamScheduler(
        optimizer, init_lr=0.0, max_lr=fp32.LR, min_lr=fp32.MIN_LR, lr_warmup_steps=fp32.LR_WARMUP_ITERS * fp32.GLOBAL_BATCH,
        lr_decay_steps=fp32.TRAIN_ITERS * fp32.GLOBAL_BATCH, lr_decay_style=fp32.LR_DECAY_STYLE, start_wd=fp32.WEIGHT_DECAY,
        end_wd=fp32.WEIGHT_DECAY, wd_incr_steps=fp32.TRAIN_ITERS * fp32.GLOBAL_BATCH, wd_incr_style="constant",
        use_checkpoint_opt_param_scheduler=False, override_opt_param_scheduler=False)
    return model, ddp, optimizer, scheduler


def checkpoint_args(distributed, bucket_size=None):
    args = fp32_checkpoint_args(distributed)
    args.bf16, args.params_dtype, args.accumulate_allreduce_grads_in_fp32 = True, torch.bfloat16, True
    if bucket_size is not None:
        args.overlap_grad_reduce, args.ddp_bucket_size = True, bucket_size
    return args


def main():
    fp32.cpu_shim()
    fixtures.megatron_core()
    only = sys.argv[1:]  # names to write, all when none are given
    for distributed, name, buckets in [(False, "tp1-bf16-optim", None), (True, "tp1-bf16-distopt", None),
                                       (True, "tp1-bf16-distopt-buckets", 18850)]:
        if only and name not in only:
            continue
        fp32.setup = lambda distributed, buckets=buckets: setup(distributed, bucket_size=buckets)
        fp32.checkpoint_args = lambda distributed, buckets=buckets: checkpoint_args(distributed, bucket_size=buckets)
        fp32.run(distributed, os.path.join(OUT, name), "expected-" + name.removeprefix("tp1-") + ".json")


if __name__ == "__main__":
    main()

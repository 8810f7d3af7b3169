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
  tp1-bf16-distopt-buckets/   the same with --overlap-grad-reduce --ddp-bucket-size 18850: the
                     gradient buffer in 4 buckets, the first ending at a 48-element LayerNorm bias
                     off the 64-element grid, distrib_optim.pt's flat tensors their unpadded parts
                     one after another (megatron-core's 'buckets_coalesced')
  tp1-fp16-optim/, tp1-fp16-distopt/   the same two with Megatron-LM's --fp16 and its dynamic
                     loss scaler (FP16_SCALER): 'grad_scaler' {scale, growth_tracker,
                     hysteresis_tracker} beside the masters; the distributed optimizer's buffer
                     keyed (float16, float16), gradients reduced in fp16 as Megatron-LM's default
  expected-bf16-optim.json, expected-bf16-distopt.json, expected-bf16-distopt-buckets.json,
  expected-fp16-optim.json, expected-fp16-distopt.json   as
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


# --fp16's dynamic loss scaler: with a window of 2 the scale doubles after two clean iterations,
# and 2^18 overflows the third iteration's fp16 gradients, which is skipped (Adam takes 2 steps in
# 3 iterations) and backs off at once (hysteresis 1).
FP16_SCALER = dict(initial_loss_scale=2.0 ** 17, min_loss_scale=1.0, loss_scale_window=2, hysteresis=1)


def setup(distributed, bucket_size=None, precision="bf16"):
    """setup() of the fp32 fixture with Megatron-LM's --bf16 (and with `bucket_size`, its
    --overlap-grad-reduce --ddp-bucket-size: the gradient buffer split into buckets); with
    `precision` "fp16" Megatron-LM's --fp16 instead: fp16 weights and gradients (Megatron-LM
    reduces them in fp16 unless --accumulate-allreduce-grads-in-fp32), FP16_SCALER."""
    from megatron.core.distributed import DistributedDataParallel, DistributedDataParallelConfig
    from megatron.core.optimizer import OptimizerConfig, get_megatron_optimizer
    from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler
    from megatron.core.transformer.module import Float16Module
    model = fixtures.build_model()
    fp16 = precision == "fp16"
    dtype = torch.float16 if fp16 else torch.bfloat16
    model.config.bf16, model.config.fp16, model.config.params_dtype = not fp16, fp16, dtype
    wrapped = Float16Module(model.config, model)
    ddp_config = DistributedDataParallelConfig(grad_reduce_in_fp32=not fp16, overlap_grad_reduce=bucket_size is not None, bucket_size=bucket_size,
                                               use_distributed_optimizer=distributed, check_for_nan_in_grad=not fp16)
    ddp = DistributedDataParallel(model.config, ddp_config, wrapped)
    ddp.broadcast_params()
    config = OptimizerConfig(optimizer="adam", lr=fp32.LR, min_lr=fp32.MIN_LR, weight_decay=fp32.WEIGHT_DECAY,
                             adam_beta1=fp32.BETA1, adam_beta2=fp32.BETA2, adam_eps=fp32.EPS, clip_grad=fp32.CLIP_GRAD,
                             use_distributed_optimizer=distributed, bf16=not fp16, fp16=fp16, params_dtype=dtype,
                             **(FP16_SCALER if fp16 else {}))
    optimizer = get_megatron_optimizer(config, [ddp])
    scheduler = OptimizerParamScheduler(
        optimizer, init_lr=0.0, max_lr=fp32.LR, min_lr=fp32.MIN_LR, lr_warmup_steps=fp32.LR_WARMUP_ITERS * fp32.GLOBAL_BATCH,
        lr_decay_steps=fp32.TRAIN_ITERS * fp32.GLOBAL_BATCH, lr_decay_style=fp32.LR_DECAY_STYLE, start_wd=fp32.WEIGHT_DECAY,
        end_wd=fp32.WEIGHT_DECAY, wd_incr_steps=fp32.TRAIN_ITERS * fp32.GLOBAL_BATCH, wd_incr_style="constant",
        use_checkpoint_opt_param_scheduler=False, override_opt_param_scheduler=False)
    return model, ddp, optimizer, scheduler


def checkpoint_args(distributed, bucket_size=None, precision="bf16"):
    args = fp32_checkpoint_args(distributed)
    if precision == "fp16":
        # validate_args turns the NaN check off under dynamic loss scaling (overflow is the scaler's signal)
        args.fp16, args.params_dtype, args.loss_scale, args.check_for_nan_in_loss_and_grad = True, torch.float16, None, False
        vars(args).update(FP16_SCALER)
    else:
        args.bf16, args.params_dtype, args.accumulate_allreduce_grads_in_fp32 = True, torch.bfloat16, True
    if bucket_size is not None:
        args.overlap_grad_reduce, args.ddp_bucket_size = True, bucket_size
    return args


def main():
    fp32.cpu_shim()
    fixtures.megatron_core()
    only = sys.argv[1:]  # names to write, all when none are given
    for distributed, name, buckets in [(False, "tp1-bf16-optim", None), (True, "tp1-bf16-distopt", None),
                                       (True, "tp1-bf16-distopt-buckets", 18850),
                                       (False, "tp1-fp16-optim", None), (True, "tp1-fp16-distopt", None)]:
        if only and name not in only:
            continue
        precision = "fp16" if "fp16" in name else "bf16"
        fp32.LOSS_SCALING["on"] = precision == "fp16"
        fp32.setup = lambda distributed, buckets=buckets, precision=precision: setup(distributed, buckets, precision)
        fp32.checkpoint_args = lambda distributed, buckets=buckets, precision=precision: checkpoint_args(distributed, buckets, precision)
        fp32.run(distributed, os.path.join(OUT, name), "expected-" + name.removeprefix("tp1-") + ".json")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes the dynamic loss-scaler fixture that Tests/TrainingTests compares the Swift scaler against.

megatron-core's own `DynamicGradScaler` (megatron.core.optimizer.grad_scaler) is driven with
`update(found_inf)` over long, seeded overflow / no-overflow sequences: bursts of consecutive
overflows long enough to reach the minimum scale, clean stretches long enough to grow several
times, and isolated overflows between them (hysteresis). For every case the file records the
constructor arguments, the `found_inf` sequence and, after each update i, the scale (the one
step i + 1 uses) and the two trackers:

    {"source": "megatron-core <version> DynamicGradScaler",
     "cases": [{"name", "initial_scale", "min_scale", "growth_factor", "backoff_factor",
                "growth_interval", "hysteresis", "found_inf": [bool],
                "scale_after": [float], "growth_tracker_after": [int],
                "hysteresis_tracker_after": [int]}]}

The scaler allocates its tensors with device='cuda'; there is no GPU here, so `torch.tensor` is
wrapped while it is constructed to place them on the CPU (`update` only combines those tensors,
so nothing else needs a device). Every scale is a float32 value, written exactly as a JSON double.

Regenerate (needs torch and megatron-core; CI does not):
    python3 scripts/reference/loss_scaler_fixture.py Tests/TrainingTests/Fixtures/dynamic_grad_scaler.json

The rules, as read in megatron-core 0.16.1's source (`DynamicGradScaler.update`) and checked here
step by step against an independent float32 re-implementation (`expected_update` below):

  state: scale (float32), growth_tracker = 0, hysteresis_tracker = hysteresis (at construction).
  update(found_inf = true):
      growth_tracker = 0
      hysteresis_tracker -= 1                    (never clamped: it keeps going negative)
      if hysteresis_tracker <= 0:
          scale = max(float32(scale * backoff_factor), min_scale)      (all float32)
      -- the hysteresis tracker is NOT restored after a backoff, so once it is exhausted every
         further overflow backs off again, until the next growth.
  update(found_inf = false):
      growth_tracker += 1
      if growth_tracker == growth_interval:
          growth_tracker = 0
          hysteresis_tracker = hysteresis        (the ONLY place it is restored)
          scale = float32(scale * growth_factor)                       (no upper clamp)
      -- a clean step does not restore the hysteresis tracker: overflows only need to be
         "consecutive" in the sense that no growth happened between them. Two isolated
         overflows fewer than growth_interval clean steps apart count toward the same
         hysteresis budget.
  min_scale only clamps a backoff (max with min_scale); growth is never clamped. The
  constructor asserts initial_scale > 0, 0 < min_scale <= initial_scale, growth_factor > 1,
  0 < backoff_factor < 1, growth_interval > 0, hysteresis > 0.
"""
import json
import random
import sys
import warnings

import numpy as np
import torch

warnings.filterwarnings("ignore")  # megatron.core warns that Transformer Engine / Apex are absent

import megatron.core  # noqa: E402
from megatron.core.optimizer import grad_scaler  # noqa: E402


def make_cpu_scaler(**kwargs):
    """Constructs megatron-core's DynamicGradScaler with its tensors on the CPU."""
    real_tensor = torch.tensor

    def cpu_tensor(*args, **kw):
        if kw.get("device") == "cuda":
            kw["device"] = "cpu"
        return real_tensor(*args, **kw)

    torch.tensor = cpu_tensor
    try:
        scaler = grad_scaler.DynamicGradScaler(**kwargs)
    finally:
        torch.tensor = real_tensor
    for attribute in ("_scale", "min_scale", "growth_factor", "backoff_factor"):
        value = getattr(scaler, attribute)
        assert value.device.type == "cpu" and value.dtype == torch.float32, attribute
    return scaler


class ExpectedScaler:
    """The rules in the docstring, in float32 (numpy), to check our reading of the source."""

    def __init__(self, initial_scale, min_scale, growth_factor, backoff_factor, growth_interval, hysteresis):
        self.scale = np.float32(initial_scale)
        self.min_scale, self.growth, self.backoff = np.float32(min_scale), np.float32(growth_factor), np.float32(backoff_factor)
        self.interval, self.hysteresis = growth_interval, hysteresis
        self.growth_tracker, self.hysteresis_tracker = 0, hysteresis

    def update(self, found_inf):
        if found_inf:
            self.growth_tracker = 0
            self.hysteresis_tracker -= 1
            if self.hysteresis_tracker <= 0:
                self.scale = max(np.float32(self.scale * self.backoff), self.min_scale)
        else:
            self.growth_tracker += 1
            if self.growth_tracker == self.interval:
                self.growth_tracker = 0
                self.hysteresis_tracker = self.hysteresis
                self.scale = np.float32(self.scale * self.growth)


def build_sequence(rng, segments):
    """Concatenates segments: ("clean", n), ("burst", n), ("sparse", n, p) (each step overflows with p)."""
    out = []
    for segment in segments:
        kind, n = segment[0], segment[1]
        if kind == "clean":
            out += [False] * n
        elif kind == "burst":
            out += [True] * n
        elif kind == "sparse":
            out += [rng.random() < segment[2] for _ in range(n)]
        else:
            raise ValueError(kind)
    return out


def random_segments(rng, steps, window, hysteresis, burst_to_min, p_sparse):
    """A seeded mix of clean stretches (up to several growth windows), short bursts around the
    hysteresis, sparse isolated overflows, and now and then a burst long enough to reach min_scale."""
    segments, total = [], 0
    while total < steps:
        r = rng.random()
        if r < 0.4:
            seg = ("clean", rng.randint(max(1, window // 3), 4 * window))
        elif r < 0.7:
            seg = ("sparse", rng.randint(window, 6 * window), p_sparse)
        elif r < 0.96:
            seg = ("burst", rng.randint(1, hysteresis + 3))
        else:
            seg = ("burst", burst_to_min + rng.randint(0, 10))
        segments.append(seg)
        total += seg[1]
    return segments


def run_case(name, seq, **params):
    scaler = make_cpu_scaler(**params)
    check = ExpectedScaler(**params)
    scales, growth, hyst = [], [], []
    for i, found_inf in enumerate(seq):
        scaler.update(found_inf)
        check.update(found_inf)
        scale = scaler.scale.item()
        assert np.isfinite(scale), f"{name}: scale overflowed float32 at step {i}"
        assert np.float32(scale) == check.scale, f"{name} step {i}: {scale} vs {check.scale}"
        assert scaler._growth_tracker == check.growth_tracker and scaler._hysteresis_tracker == check.hysteresis_tracker
        scales.append(scale)
        growth.append(scaler._growth_tracker)
        hyst.append(scaler._hysteresis_tracker)
    ups = sum(1 for a, b in zip([params["initial_scale"]] + scales, scales) if b > a)
    downs = sum(1 for a, b in zip([params["initial_scale"]] + scales, scales) if b < a)
    at_min = sum(1 for i, s in enumerate(scales) if s == np.float32(params["min_scale"]) and seq[i])
    print(f"{name}: {len(seq)} steps, {sum(seq)} overflows, {ups} growths, {downs} backoffs, "
          f"{at_min} overflows at min_scale, scale range [{min(scales):g}, {max(scales):g}], final {scales[-1]:g}")
    return {"name": name, **{k: (float(v) if isinstance(v, float) else v) for k, v in params.items()},
            "found_inf": seq, "scale_after": scales,
            "growth_tracker_after": growth, "hysteresis_tracker_after": hyst}


def main(path):
    rng = random.Random(20261122)
    cases = []

    # Megatron-LM's defaults (--initial-loss-scale 2**32, --loss-scale-window 1000, --hysteresis 2):
    # long clean stretches that grow, a burst to min_scale, isolated overflows hundreds of steps apart.
    # The two single overflows 999 clean steps apart share one hysteresis budget: the second backs off.
    seq = build_sequence(rng, [("sparse", 150, 0.02), ("clean", 1000), ("burst", 1), ("clean", 999),
                               ("burst", 1), ("clean", 1000), ("burst", 40), ("sparse", 150, 0.01)])
    cases.append(run_case("megatron_defaults", seq, initial_scale=2.0 ** 32, min_scale=1.0, growth_factor=2.0,
                          backoff_factor=0.5, growth_interval=1000, hysteresis=2))

    seq = build_sequence(rng, random_segments(rng, 800, 5, 2, 24, 0.12))
    cases.append(run_case("window5_hysteresis2", seq, initial_scale=2.0 ** 16, min_scale=1.0, growth_factor=2.0,
                          backoff_factor=0.5, growth_interval=5, hysteresis=2))

    seq = build_sequence(rng, random_segments(rng, 600, 3, 1, 14, 0.2))
    cases.append(run_case("window3_hysteresis1", seq, initial_scale=2.0 ** 8, min_scale=1.0, growth_factor=2.0,
                          backoff_factor=0.5, growth_interval=3, hysteresis=1))

    seq = build_sequence(rng, random_segments(rng, 700, 4, 3, 18, 0.15))
    cases.append(run_case("min4_window4_hysteresis3", seq, initial_scale=2.0 ** 12, min_scale=4.0, growth_factor=2.0,
                          backoff_factor=0.5, growth_interval=4, hysteresis=3))

    # Reaches min_scale early and stays clamped through overflow bursts and clean runs shorter
    # than the window, then grows off the floor and falls back to it.
    seq = build_sequence(rng, [("burst", 30), ("clean", 49), ("burst", 5), ("sparse", 150, 0.05),
                               ("clean", 49), ("burst", 2), ("clean", 50), ("burst", 1), ("clean", 120),
                               ("burst", 12), ("sparse", 200, 0.03), ("burst", 20)])
    cases.append(run_case("clamped_at_min", seq, initial_scale=16.0, min_scale=1.0, growth_factor=2.0,
                          backoff_factor=0.5, growth_interval=50, hysteresis=2))

    # Factors that are not powers of two: float32 rounding of every product, and a min_scale the
    # backoff does not land on exactly.
    seq = build_sequence(rng, random_segments(rng, 500, 6, 2, 16, 0.1))
    cases.append(run_case("non_power_of_two", seq, initial_scale=30000.0, min_scale=7.5, growth_factor=3.0,
                          backoff_factor=0.3, growth_interval=6, hysteresis=2))

    doc = {"source": f"megatron-core {megatron.core.__version__} DynamicGradScaler", "cases": cases}
    text = json.dumps(doc, separators=(",", ":"))
    with open(path, "w") as f:
        f.write(text + "\n")
    print(f"wrote {path}: {len(cases)} cases, {len(text)} bytes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/TrainingTests/Fixtures/dynamic_grad_scaler.json")

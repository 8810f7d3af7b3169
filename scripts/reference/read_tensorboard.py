#!/usr/bin/env python3
"""Reads the event files `megatron train --tensorboard-dir DIR` wrote, with TensorBoard's own
loader (pip install tensorboard), and prints the scalars; exits non-zero if a file does not load
or a scalar is missing.

    python3 scripts/reference/read_tensorboard.py DIR [--expect "lm loss" "learning-rate" ...]
"""
import argparse
import glob
import os
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--expect", nargs="*", default=["lm loss", "learning-rate", "batch-size", "grad-norm",
                                                         "lm loss validation", "lm loss validation ppl"])
    args = parser.parse_args()
    files = glob.glob(os.path.join(args.directory, "events.out.tfevents.*"))
    if not files:
        sys.exit(f"no event files in {args.directory}")
    accumulator = EventAccumulator(args.directory)
    accumulator.Reload()
    tags = accumulator.Tags()["scalars"]
    for tag in tags:
        events = accumulator.Scalars(tag)
        print(f"{tag}: {len(events)} points, steps {[e.step for e in events]}, last {events[-1].value:.6g}")
    missing = [tag for tag in args.expect if tag not in tags]
    if missing:
        sys.exit(f"missing scalars: {missing}")
    print(f"ok: TensorBoard reads {len(files)} event file(s) with {len(tags)} scalar tags")


if __name__ == "__main__":
    main()

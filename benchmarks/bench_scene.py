# SPDX-License-Identifier: GPL-3.0-or-later
"""Scene generator throughput: frames/s on ONE CPU core (scene + features), per sample rate.

    .venv/bin/python benchmarks/bench_scene.py [--frames 20] [--rates 61.44e6 20e6]

Pins BLAS/FFT to one thread so the figure is per core (the dataset builder runs one process
per core). Prints the time of the generator alone and with the spectrogram features.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--rates", type=float, nargs="+", default=[61.44e6, 20e6])
    ap.add_argument("--preset", default="realistic")
    args = ap.parse_args()
    from gr_specdiff.scene import generate

    for rate in args.rates:
        generate(np.random.default_rng(0), rate, preset=args.preset).features()  # warm-up
        t_gen = t_feat = 0.0
        c0 = time.process_time()
        w0 = time.perf_counter()
        for i in range(args.frames):
            t0 = time.perf_counter()
            sc = generate(np.random.default_rng(1000 + i), rate, preset=args.preset)
            t1 = time.perf_counter()
            sc.features()
            t2 = time.perf_counter()
            t_gen += t1 - t0
            t_feat += t2 - t1
        n = args.frames
        cpu = time.process_time() - c0
        wall = time.perf_counter() - w0
        # CPU time is the per-core figure on a shared machine (wall time includes waiting).
        print(f"{rate / 1e6:6.2f} MS/s {args.preset}: scene+features {n / cpu:5.2f} frames/s "
              f"per core by CPU time ({1e3 * cpu / n:.0f} ms/frame); wall {n / wall:5.2f} "
              f"frames/s (scene {1e3 * t_gen / n:.0f} + features {1e3 * t_feat / n:.0f} ms)")
    try:
        import torch

        if torch.cuda.is_available():
            print("CUDA: the generator is numpy-only; features on CUDA via "
                  "compute_features_torch (see docs/BENCHMARKS.md)")
    except ImportError:
        pass


if __name__ == "__main__":
    main()

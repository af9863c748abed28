#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Time the spectrogram front end per 40 ms frame and print a table.

    .venv/bin/python benchmarks/bench_spectrogram.py [--repeats 10] [--threads 2]

Real-time factor = frame duration / compute time (>= 1 keeps up with the radio).
"""

import argparse
import time

import numpy as np
import torch

from gr_specdiff import spectrogram as sg

RATES = (61.44e6, 30.72e6, 20e6, 15.36e6)


def median_seconds(fn, repeats):
    fn()  # warm-up: plans, allocations
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"spectrogram front end, 40 ms frames, {args.threads} threads, median of {args.repeats}")
    print(f"| {'rate MS/s':>9} | {'path':<12} | {'ms/frame':>8} | {'x real time':>11} |")
    print(f"|{'-' * 11}|{'-' * 14}|{'-' * 10}|{'-' * 13}|")
    for rate in RATES:
        n = int(sg.FRAME_SECONDS * rate)
        x = (rng.normal(size=n) + 1j * rng.normal(size=n)).astype(np.complex64)
        xt = torch.from_numpy(x)
        paths = {
            "numpy/scipy": lambda x=x, rate=rate: sg.compute_features(
                x, rate, workers=args.threads, backend="numpy"),
            "torch-cpu": lambda xt=xt, rate=rate: sg.compute_features_torch(xt, rate),
        }
        if sg.native_available():
            paths["native"] = lambda x=x, rate=rate: sg.compute_features(x, rate,
                                                                         backend="native")
        if torch.cuda.is_available():
            xc = xt.cuda()

            def cuda_path(xc=xc, rate=rate):
                sg.compute_features_torch(xc, rate)
                torch.cuda.synchronize()

            paths["torch-cuda"] = cuda_path
        for name, fn in paths.items():
            t = median_seconds(fn, args.repeats)
            print(f"| {rate / 1e6:>9.2f} | {name:<12} | {t * 1e3:>8.1f} | "
                  f"{sg.FRAME_SECONDS / t:>11.1f} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fig. 3b of the paper: SpecDiff's accuracy vs its time-embedding size, across SNR.

Trains the full SpecDiff (lite widths) once per time-embedding size at the equal budget of
``compare_budget.py`` (same options, same run directories: the 64-wide model is that table's
``specdiff`` and is reused), evaluates each, prints mean accuracy and IoU overall and per SNR bin,
and plots both against SNR, one line per size.

    .venv/bin/python benchmarks/temb_sweep.py --config default_finetune \
        --root runs/compare_realistic_v2 --budget 1000 --schedule 1000 --frames 500 \
        --figure docs/figures/temb_sweep.png
"""

from __future__ import annotations

import argparse
import sys

from compare_budget import TEMB_SIZES, add_arguments, measure


def variant(size: int) -> str:
    return "specdiff" if size == 64 else f"specdiff_temb{size}"


def plot(rows, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, key, label in zip(axes, ("mean_accuracy", "mean_iou"), ("mean accuracy", "mean IoU")):
        for size, _, rep in rows:
            bins = [b for b in rep["per_snr"] if b["snr_hi"] is not None]
            mids = [(b["snr_lo"] + b["snr_hi"]) / 2 for b in bins]
            ax.plot(mids, [b[key] for b in bins], "o-", label=f"t_emb {size}")
        ax.set_xlabel("in-band SNR (dB, mean over the frame's signals)")
        ax.set_title(f"{label} vs SNR")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("score")
    axes[1].legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(ap)
    ap.add_argument("--sizes", type=int, nargs="*", default=list(TEMB_SIZES),
                    choices=TEMB_SIZES, help="time-embedding sizes to train and compare")
    ap.add_argument("--figure", help="write the plot here (PNG)")
    args = ap.parse_args()
    rows = [(size, *measure(variant(size), args)) for size in args.sizes]
    bins = [b for b in rows[0][2]["per_snr"] if b["snr_hi"] is not None]
    print(f"\nbase config {args.config}; {args.budget} steps x 8 frames (LR schedule of "
          f"{args.schedule} steps), seed {args.seed}, test frames: {args.frames} of {args.data}")
    heads = " | ".join(f"acc {b['snr_lo']:+.0f}..{b['snr_hi']:+.0f} dB" for b in bins)
    print(f"| t_emb | params | mean acc | mean IoU | {heads} |")
    print("|---|---|---|---|" + "---|" * len(bins))
    for size, params, rep in rows:
        m = rep["metrics"]
        per_bin = " | ".join(f"{100 * b['mean_accuracy']:.1f}" for b in rep["per_snr"]
                             if b["snr_hi"] is not None)
        print(f"| {size} | {params / 1e6:.3f} M | {100 * m['mean_accuracy']:.2f} | "
              f"{100 * m['mean_iou']:.2f} | {per_bin} |")
    if args.figure:
        plot(rows, args.figure)
        print(f"figure: {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

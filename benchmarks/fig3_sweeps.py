#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fig. 3b and 3c of the paper: SpecDiff vs its time-embedding size and its input resolution.

Each point is the full SpecDiff (lite widths) trained at the equal budget of
``compare_budget.py`` (same options, same run directories: the lite model itself, t_emb 64 at
256 x 256 with a 4x stem, is that table's ``specdiff`` and is reused), then evaluated.

* ``--sweep temb`` (Fig. 3b): t_emb 16 ... 256; mean accuracy and IoU per SNR bin, plotted
  against SNR, one line per size.
* ``--sweep resolution`` (Fig. 3c): the input area-resized to 128 or 64 (``model.input_pool``),
  and 256 with a 2x instead of a 4x stem; mean IoU against CPU latency, measured here for every
  point in one quiet run (median of ``--repeats`` frames, batch 1) rather than taken from
  evaluations that may have shared the cores.

    .venv/bin/python benchmarks/fig3_sweeps.py --sweep temb --config default_finetune \
        --root runs/compare_realistic_v2 --budget 1000 --schedule 1000 --frames 500 \
        --figure docs/figures/temb_sweep.png
    .venv/bin/python benchmarks/fig3_sweeps.py --sweep resolution --config default_finetune \
        --root runs/compare_realistic_v2 --budget 1000 --schedule 1000 --frames 500 \
        --figure docs/figures/resolution_sweep.png
"""

from __future__ import annotations

import argparse
import sys

import torch
from compare_budget import RESOLUTIONS, TEMB_SIZES, add_arguments, measure

from gr_specdiff.evaluate import measure_latency, style_snr_axes
from gr_specdiff.model.factory import build_pipeline, load_trained

#: sweep -> {point label: compare_budget variant}
POINTS = {
    "temb": {str(n): "specdiff" if n == 64 else f"specdiff_temb{n}" for n in TEMB_SIZES},
    "resolution": {name: "specdiff" if name == "256" else f"specdiff_res{name}"
                   for name in RESOLUTIONS},
}


def resolution_label(name: str) -> str:
    pool, stem = RESOLUTIONS[name]
    return f"{256 // pool} x {256 // pool}, stem {stem}"


def snr_bins(rep: dict) -> list[dict]:
    return [b for b in rep["per_snr"] if b["snr_hi"] is not None]


def latency_ms(checkpoint: str, repeats: int) -> float:
    """Batch-1 CPU latency of the checkpoint's sampler on a 3 x 256 x 256 frame."""
    pipe = build_pipeline(*load_trained(checkpoint))

    def run(x):
        with torch.no_grad():
            return pipe(torch.from_numpy(x))

    return measure_latency(run, batch=1, repeats=repeats)


def plot_temb(rows, ax_pair) -> None:
    for ax, key in zip(ax_pair, ("mean_accuracy", "mean_iou")):
        for name, _, rep in rows:
            bins = snr_bins(rep)
            ax.plot([(b["snr_lo"] + b["snr_hi"]) / 2 for b in bins], [b[key] for b in bins], "o-",
                    label=f"t_emb {name}")
    style_snr_axes(ax_pair, ("mean accuracy vs SNR", "mean IoU vs SNR"))


def plot_resolution(rows, ax) -> None:
    for name, _, rep in rows:
        x, y = rep["quiet_ms"], 100 * rep["metrics"]["mean_iou"]
        ax.plot(x, y, "o")
        ax.annotate(resolution_label(name), (x, y), textcoords="offset points", xytext=(5, 5))
    ax.margins(x=0.25, y=0.15)
    ax.set_xlabel("CPU latency per frame (ms, batch 1, 2 threads)")
    ax.set_ylabel("mean IoU (%)")
    ax.set_title("speed vs accuracy by input resolution")
    ax.grid(alpha=0.3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(ap)
    ap.add_argument("--sweep", choices=list(POINTS), required=True)
    ap.add_argument("--points", nargs="*", help="a subset of the sweep's points (default: all)")
    ap.add_argument("--figure", help="write the plot here (PNG)")
    ap.add_argument("--repeats", type=int, default=30, help="frames timed per point (resolution)")
    args = ap.parse_args()
    points = POINTS[args.sweep]
    names = args.points or list(points)
    unknown = set(names) - set(points)
    if unknown:
        ap.error(f"unknown {args.sweep} points {sorted(unknown)}: choose from {list(points)}")
    rows = [(name, *measure(points[name], args)) for name in names]
    if args.sweep == "resolution":
        torch.set_num_threads(args.threads)
        for _, _, rep in rows:
            rep["quiet_ms"] = latency_ms(rep["model"], args.repeats)
    print(f"\nbase config {args.config}; {args.budget} steps x 8 frames (LR schedule of "
          f"{args.schedule} steps), seed {args.seed}, test frames: {args.frames} of {args.data}")
    if args.sweep == "temb":
        heads = " | ".join(f"acc {b['snr_lo']:+.0f}..{b['snr_hi']:+.0f} dB"
                           for b in snr_bins(rows[0][2]))
        print(f"| t_emb | params | mean acc | mean IoU | {heads} |")
        print("|---|---|---|---|" + "---|" * len(snr_bins(rows[0][2])))
    else:
        print("| input, stem | params | mean acc | mean IoU | IoU noise / NR / LTE / radar | "
              "ms/frame |")
        print("|---|---|---|---|---|---|")
    for name, params, rep in rows:
        m = rep["metrics"]
        label = name if args.sweep == "temb" else resolution_label(name)
        head = (f"| {label} | {params / 1e6:.3f} M | "
                f"{100 * m['mean_accuracy']:.2f} | {100 * m['mean_iou']:.2f} |")
        if args.sweep == "temb":
            tail = " | ".join(f"{100 * b['mean_accuracy']:.1f}" for b in snr_bins(rep))
        else:
            tail = (" / ".join(f"{100 * (v or 0):.1f}" for v in m["per_class_iou"].values())
                    + f" | {rep['quiet_ms']:.1f}")
        print(f"{head} {tail} |")
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        if args.sweep == "temb":
            fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
            plot_temb(rows, axes)
        else:
            fig, ax = plt.subplots(figsize=(6, 4))
            plot_resolution(rows, ax)
        fig.tight_layout()
        fig.savefig(args.figure, dpi=110)
        plt.close(fig)
        print(f"figure: {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

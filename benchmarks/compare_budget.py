#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Equal-budget comparison (Tables I and II of docs/RESULTS.md) and print the table.

Every learned model gets the same data (the base config's: ``--config default``, our realistic
protocol, or ``--config paper_protocol``, the seed authors' recipe), the same optimizer settings
and the same budget: ``--budget`` optimizer steps of 8 frames under the learning-rate schedule
of a ``--schedule``-step run (``specdiff train --stop-at``), so none of them gets the benefit of
an annealed learning rate that the others lack. The energy detector needs no training.

    .venv/bin/python benchmarks/compare_budget.py --budget 1000 --frames 200 \
        [--reuse specdiff=runs/default/step1000.pt] [--only unet_lite energy]
    .venv/bin/python benchmarks/compare_budget.py --config default_finetune \
        --root runs/compare_realistic --budget 1000 --schedule 1000 --frames 500
    .venv/bin/python benchmarks/compare_budget.py --config paper_protocol --data data/paper_test \
        --root runs/compare_paper --budget 1000 --schedule 1000 --frames 500
    # the spread: the same runs with another training seed, in another root
    .venv/bin/python benchmarks/compare_budget.py --config default_finetune --seed 1 \
        --root runs/compare_realistic_v2_seed1 --budget 1000 --schedule 1000 --frames 500 \
        --only specdiff unet_lite

Runs live in runs/compare/<name>/, evaluations in runs/compare/<name>/eval/ (resumable:
a finished run or evaluation is not redone).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

from gr_specdiff.model.factory import build_model, load_config
from gr_specdiff.train import count_parameters, train

#: name -> overrides of the base config, section by section (None: not trained). A model
#: section with an ``arch`` replaces the base's model section (a baseline network).
VARIANTS = {
    "specdiff": {},  # full SpecDiff lite: FF + CP
    "specdiff_no_cp": {"model": {"use_cp": False}},
    "specdiff_no_ff": {"model": {"use_ff": False}},
    "specdiff_base": {"model": {"use_cp": False, "use_ff": False}},  # the paper's baseline
    # SpecDiff's own training recipe of stage 4: a quarter of each batch recycled (train.py)
    "specdiff_recycle": {"loss": {"recycle_fraction": 0.25}},
    "unet_lite": {"model": {"arch": "unet", "widths": [32, 64, 96, 160], "stem": 4}},
    # Needs torchvision, which does not import beside .venv's torch 2.13 CPU build: run it
    # from `make baseline-venv`'s venv (PYTHONPATH=python, `--only deeplab`; see the Makefile).
    "deeplab": {"model": {"arch": "deeplab"}},
    "energy": None,
}
#: Fig. 3b of the paper: the full SpecDiff with other time-embedding sizes ("specdiff" has the
#: lite config's 64); benchmarks/fig3_sweeps.py trains and plots them.
TEMB_SIZES = (16, 32, 64, 128, 256)
VARIANTS.update({f"specdiff_temb{n}": {"model": {"t_emb": n}} for n in TEMB_SIZES if n != 64})
#: Fig. 3c: input resolution -> (input_pool, stem). The lite network's latent grid stays 8 x 8
#: (its noise network pools three more times), so a coarser input takes a smaller stem; the
#: 256 x 256 input with a 2x stem runs the network at twice the lite grid.
RESOLUTIONS = {"256": (1, 4), "128": (2, 2), "64": (4, 1), "256_stem2": (1, 2)}
VARIANTS.update({f"specdiff_res{name}": {"model": {"input_pool": pool, "stem": stem}}
                 for name, (pool, stem) in RESOLUTIONS.items() if name != "256"})
#: The 2x stem's compute spent on width instead: the lite network at its 4x stem with every
#: width doubled (about 4x the MACs, as the 2x stem's four times the positions).
#: (The same widths as configs/default_wide2.)
VARIANTS["specdiff_wide2"] = {"model": {
    key: load_config("default_wide2")["model"][key]
    for key in ("enc_channels", "unet_channels", "ff_channels")}}
#: Table II at the 2x stem: the U-Net baseline on the grid of specdiff_res256_stem2.
VARIANTS["unet_res256_stem2"] = {"model": {**VARIANTS["unet_lite"]["model"], "stem": 2}}
SWEEPS = ("_temb", "_res")
DEFAULT_VARIANTS = [v for v in VARIANTS if v not in ("deeplab", "specdiff_recycle")
                    and v != "specdiff_wide2" and not any(sweep in v for sweep in SWEEPS)]


def variant_config(name: str, base: str = "default", train_dir=None, val_dir=None) -> dict:
    cfg = load_config(base)
    if train_dir:  # data generated elsewhere (scripts/gpu_session.sh)
        cfg["data"]["dir"] = str(train_dir)
    if val_dir:
        cfg["data"]["val_dir"] = str(val_dir)
    for section, over in VARIANTS[name].items():
        if section == "model" and "arch" in over:
            cfg["model"] = dict(over)
        else:
            cfg.setdefault(section, {}).update(over)
    cfg["name"] = name
    return cfg


def occupancy_iou(cm) -> float:
    """Mean of the noise and the signal (any class) IoU: what an energy detector can score."""
    tn = cm[0][0]
    fp = sum(cm[0][1:])
    fn = sum(row[0] for row in cm[1:])
    tp = sum(sum(row[1:]) for row in cm[1:])
    return (tp / max(tp + fp + fn, 1) + tn / max(tn + fp + fn, 1)) / 2


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The budget, data and device options every equal-budget benchmark shares."""
    ap.add_argument("--budget", type=int, default=1000, help="optimizer steps per model")
    ap.add_argument("--schedule", type=int, default=7000, help="LR schedule length in steps")
    ap.add_argument("--frames", type=int, default=200, help="test frames evaluated")
    ap.add_argument("--config", default="default",
                    help="base config: data, optimizer, sampler (default: default)")
    ap.add_argument("--data", default="data/test", help="test split")
    ap.add_argument("--root", default="runs/compare")
    ap.add_argument("--train-data", help="training split (default: the config's)")
    ap.add_argument("--val-data", help="validation split (default: the config's)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto (training and eval)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0,
                    help="training seed (init, batches, noise); repeat runs measure the spread")


def measure(name: str, args, reuse: str | None = None) -> tuple[int, dict]:
    """Train variant ``name`` for the budget (unless done, or ``reuse`` names a checkpoint) and
    evaluate it: (parameter count, the evaluation's report)."""
    run = Path(args.root) / name
    if VARIANTS[name] is None:
        model_arg, params = "energy", 0
    else:
        ckpt = Path(reuse or run / "checkpoint.pt")
        done = ckpt.exists() and torch.load(ckpt, map_location="cpu",
                                            weights_only=True)["step"] >= args.budget
        if not done and not reuse:
            print(f"== training {name} for {args.budget} steps", flush=True)
            cfg = variant_config(name, args.config, args.train_data, args.val_data)
            cfg.setdefault("train", {})["seed"] = args.seed
            train(cfg, out=run, steps=args.schedule, stop_at=args.budget,
                  resume=ckpt.exists(), progress=False, threads=args.threads,
                  device=args.device)
        cfg = torch.load(ckpt, map_location="cpu", weights_only=True)["config"]
        model_arg, params = str(ckpt), count_parameters(build_model(cfg))
    out = run / "eval"
    if not (out / "metrics.json").exists():
        print(f"== evaluating {name}", flush=True)
        subprocess.run([sys.executable, "-m", "gr_specdiff.cli", "eval", "--model", model_arg,
                        "--data", args.data, "--frames", str(args.frames), "--out", str(out),
                        "--sweep-steps", "--threads", str(args.threads),
                        "--device", args.device], check=True, stdout=subprocess.DEVNULL)
    return params, json.loads((out / "metrics.json").read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(ap)
    ap.add_argument("--only", nargs="*", default=DEFAULT_VARIANTS, choices=list(VARIANTS))
    ap.add_argument("--reuse", nargs="*", default=[],
                    help="NAME=CHECKPOINT: evaluate an existing checkpoint instead of training")
    args = ap.parse_args()
    reuse = dict(r.split("=", 1) for r in args.reuse)
    rows = [(name, *measure(name, args, reuse.get(name))) for name in args.only]
    print(f"\nbase config {args.config}; equal budget: {args.budget} steps x 8 frames "
          f"(LR schedule of {args.schedule} steps), test frames: {args.frames} of {args.data}, "
          f"device {args.device}, {args.threads} CPU threads")
    print("| model | params | mean acc | mean IoU | IoU noise / NR / LTE / radar | "
          "occupancy IoU | ms/frame |")
    print("|---|---|---|---|---|---|---|")
    for name, params, rep in rows:
        m = rep["metrics"]
        if VARIANTS[name] is None:  # occupancy only: its class metrics mean nothing
            acc = iou = per_class = "–"
        else:
            acc, iou = f"{100 * m['mean_accuracy']:.2f}", f"{100 * m['mean_iou']:.2f}"
            per_class = " / ".join(f"{100 * (v or 0):.1f}" for v in m["per_class_iou"].values())
        print(f"| {name} | {params / 1e6:.2f} M | {acc} | {iou} | {per_class} | "
              f"{100 * occupancy_iou(m['confusion_matrix']):.2f} | "
              f"{rep['latency']['ms_per_frame']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

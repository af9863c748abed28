# SPDX-License-Identifier: GPL-3.0-or-later
"""Batch-norm statistics re-measured on the path inference takes: does it help?

    .venv/bin/python benchmarks/bn_recalibration.py [--model models/specdiff_default.yaml] \
        [--train data/train_big] [--frames 800] [--data data/val1k] [--eval-frames N]

The shipped model was trained with most of each batch away from the K = 1 sampler's only
timestep (uniform and recycled timesteps, docs/MODEL.md), and its exported weights are an EMA
whose running statistics averaged the raw weights'. Both make its batch-norm statistics
differ from those of the inputs it sees at inference. This re-measures them (a cumulative
average, as SWA's batch-norm update does) on ``--frames`` training frames run through the
exported sampler path (its fixed noise, flips as in training), then scores both versions on
``--data`` and lists the layers whose statistics moved most.
"""

from __future__ import annotations

import argparse


def recalibrate(model, pipe, ds, frames: int, batch: int = 8, seed: int = 0) -> None:
    """Reset every BatchNorm2d of ``model`` and re-measure it on ``frames`` frames of ``ds``
    (drawn at random, flipped at random as in training) through ``pipe``'s inference path;
    ``model`` is left in eval mode."""
    import torch

    from gr_specdiff.model.pipeline import FLIPS
    from gr_specdiff.train import random_flips

    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the batches
    g = torch.Generator().manual_seed(seed)
    picks = torch.randperm(len(ds), generator=g)[:frames].tolist()
    model.train()
    with torch.no_grad():
        for start in range(0, len(picks), batch):
            items = [ds[i] for i in picks[start:start + batch]]
            x = torch.stack([torch.as_tensor(it[0]) for it in items])
            y = torch.stack([torch.as_tensor(it[1]) for it in items])
            x, _ = random_flips(x, y, FLIPS, g)
            pipe.probabilities(x)
    model.eval()


def score(pipe, ds, frames: int | None) -> dict:
    """The evaluation's metrics (``gr_specdiff.evaluate``) of ``pipe`` on the first ``frames``
    of ``ds``."""
    import torch

    from gr_specdiff.evaluate import evaluate

    def run(feats):
        with torch.no_grad():
            conf, cls = pipe.probabilities(torch.from_numpy(feats)).max(dim=1)
        return cls.numpy(), conf.numpy()

    return evaluate(run, ds, max_frames=frames)["metrics"]


def bn_stats(model) -> dict:
    """Every BatchNorm2d's running mean and variance (copies), by layer name."""
    import torch

    return {name: (m.running_mean.clone(), m.running_var.clone())
            for name, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/specdiff_default.yaml")
    ap.add_argument("--train", default="data/train_big", help="frames to re-measure on")
    ap.add_argument("--frames", type=int, default=800)
    ap.add_argument("--data", default="data/val1k", help="split to score on")
    ap.add_argument("--eval-frames", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    from gr_specdiff.data.dataset import SpectrumDataset
    from gr_specdiff.model.export import load_model
    from gr_specdiff.model.factory import build_model, build_pipeline
    from gr_specdiff.train import initial_weights

    torch.set_num_threads(args.threads)
    cfg = load_model(args.model, device="cpu").card["training"]["config"]
    model = build_model(cfg)
    model.load_state_dict(initial_weights(args.model, model))
    model.eval()
    pipe = build_pipeline(model, cfg)
    val = SpectrumDataset(args.data)
    shipped = score(pipe, val, args.eval_frames)
    before = bn_stats(model)
    recalibrate(model, pipe, SpectrumDataset(args.train), args.frames)
    after = bn_stats(model)
    redone = score(pipe, val, args.eval_frames)
    n = len(val) if args.eval_frames is None else min(args.eval_frames, len(val))
    print(f"{args.model} on {n} frames of {args.data}; statistics re-measured on "
          f"{args.frames} frames of {args.train}\n")
    print("| batch-norm statistics | mean accuracy | mean IoU |\n|---|---|---|")
    for label, m in (("as trained (shipped)", shipped), ("re-measured at K = 1", redone)):
        print(f"| {label} | {100 * m['mean_accuracy']:.2f} % | {100 * m['mean_iou']:.2f} % |")
    # How far each layer moved: the median over channels of |log(var_after / var_before)|.
    eps = 1e-5
    shift = {k: float((torch.log((after[k][1] + eps) / (before[k][1] + eps))).abs().median())
             for k in before}
    print("\n| layer | median abs log variance ratio |\n|---|---|")
    for k in sorted(shift, key=shift.get, reverse=True)[:8]:
        print(f"| {k} | {shift[k]:.2f} |")


if __name__ == "__main__":
    main()

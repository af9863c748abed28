# SPDX-License-Identifier: GPL-3.0-or-later
"""Would one carrier class per frequency column raise the model's mean IoU?

    .venv/bin/python benchmarks/carrier_vote.py --model models/specdiff_default \
        [--splits data/val1k data/test] [--threads 2]

In the scene generator's frames NR and LTE never share a column (carriers sit side by side in
frequency; the script counts it in the labels), so a model that calls half a carrier NR and
half LTE is wrong on one of the halves. Two votes after the argmax, detection left as it is
(noise and radar pixels untouched): *per column*, every NR/LTE pixel of a column takes the
class with more of the column's NR+LTE probability; *per run*, every column of a run of
adjacent carrier columns takes the run's. Real networks share a carrier between LTE and NR
(dynamic spectrum sharing), which the generator does not model, so a gain here is partly the
generator's layout and is weighed against that before anything ships.
"""

from __future__ import annotations

import argparse

import numpy as np

from gr_specdiff import LTE, NR


def vote(logp: np.ndarray, per: str) -> np.ndarray:
    """Class map (H, W) of one frame's log-probabilities (C, H, W), its NR/LTE pixels voted
    ``per`` "column" or "run" (of adjacent columns holding any NR/LTE pixel)."""
    pred = logp.argmax(0)
    carrier = (pred == NR) | (pred == LTE)
    p = np.exp(logp.astype(np.float32))
    mass = np.stack([(p[NR] * carrier).sum(0), (p[LTE] * carrier).sum(0)])  # (2, W)
    if per == "run":
        from scipy import ndimage

        runs, n = ndimage.label(carrier.any(0))
        if n:
            sums = np.stack([ndimage.sum(m, runs, np.arange(1, n + 1)) for m in mass])
            inside = runs > 0
            mass[:, inside] = sums[:, runs[inside] - 1]
    elif per != "column":
        raise ValueError(f"per: {per!r}; use column or run")
    column_class = np.where(mass[0] >= mass[1], NR, LTE)
    return np.where(carrier, column_class[None, :], pred)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="exported model (.ts/.yaml)")
    ap.add_argument("--splits", nargs="+", default=["data/val1k", "data/test"])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch
    from class_bias import log_probabilities

    from gr_specdiff.data.dataset import SpectrumDataset
    from gr_specdiff.evaluate import confusion_matrix, metrics_from_confusion
    from gr_specdiff.runtime import open_model

    torch.set_num_threads(args.threads)
    model = open_model(args.model)
    print("| split | NR/LTE label columns shared | vote | mean acc | mean IoU | IoU "
          + " / ".join(model.classes) + " |")
    print("|---|---|---|---|---|---|")
    for split in args.splits:
        logp, labels = log_probabilities(model, SpectrumDataset(split))
        shared = sum(((lab == NR).any(0) & (lab == LTE).any(0)).sum() for lab in labels)
        n = len(model.classes)
        cms = {k: np.zeros((n, n), np.int64) for k in ("none", "column", "run")}
        for lp, lab in zip(logp, labels):
            cms["none"] += confusion_matrix(lp.argmax(0), lab, n_classes=n)
            for per in ("column", "run"):
                cms[per] += confusion_matrix(vote(lp, per), lab, n_classes=n)
        for per, cm in cms.items():
            m = metrics_from_confusion(cm)
            ious = " / ".join(f"{100 * v:.1f}" for v in m["per_class_iou"].values())
            print(f"| {split} | {shared} | {per} | {100 * m['mean_accuracy']:.2f} % | "
                  f"{100 * m['mean_iou']:.2f} % | {ious} % |")


if __name__ == "__main__":
    main()

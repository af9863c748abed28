# SPDX-License-Identifier: GPL-3.0-or-later
"""Would a per-class bias on the model's log-probabilities raise its mean IoU?

    .venv/bin/python benchmarks/class_bias.py --model models/specdiff_default \
        [--fit data/val1k] [--data data/test] [--threads 2]

Mean IoU punishes a class predicted too often and too rarely alike; a network trained with
class-balanced cross entropy may lean one way. This fits one additive bias per signal class
(noise fixed at 0) to the log-probabilities by coordinate search on the ``--fit`` split
(maximising its mean IoU), then scores the biased argmax on ``--data``, which chose nothing.
If the gain on ``--data`` is nil, the model's probabilities are already calibrated for the
argmax and a bias is not worth a field in the model card.
"""

from __future__ import annotations

import argparse

import numpy as np

STEPS = (0.4, 0.2, 0.1, 0.05)


def log_probabilities(model, ds, batch: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(frames, classes, H, W) float16 log-probabilities and (frames, H, W) uint8 labels."""
    import torch

    from gr_specdiff.spectrogram import N_COLS, N_ROWS

    n = len(ds)
    logp = np.zeros((n, len(model.classes), N_ROWS, N_COLS), np.float16)
    labels = np.zeros((n, N_ROWS, N_COLS), np.uint8)
    with torch.inference_mode():
        for s in range(0, n, batch):
            items = [ds[i] for i in range(s, min(n, s + batch))]
            x = torch.stack([it[0] for it in items]).to(model.device)
            p = model.module.probabilities(x).float().clamp_min(1e-6).log()
            logp[s:s + len(items)] = p.cpu().numpy()
            labels[s:s + len(items)] = np.stack([it[1].numpy() for it in items])
    return logp, labels


def scores(logp: np.ndarray, labels: np.ndarray, bias) -> dict:
    from gr_specdiff.evaluate import confusion_matrix, metrics_from_confusion

    n = logp.shape[1]
    cm = np.zeros((n, n), np.int64)
    b = np.asarray(bias, np.float32)[None, :, None, None]
    for s in range(0, len(logp), 100):
        cm += confusion_matrix((logp[s:s + 100].astype(np.float32) + b).argmax(1),
                               labels[s:s + 100], n_classes=n)
    return metrics_from_confusion(cm)


def fit_bias(logp: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Coordinate search over the signal classes' biases, step sizes :data:`STEPS`."""
    bias = np.zeros(logp.shape[1])
    best = scores(logp, labels, bias)["mean_iou"]
    for step in STEPS:
        moved = True
        while moved:
            moved = False
            for c in range(1, len(bias)):
                for d in (step, -step):
                    trial = bias.copy()
                    trial[c] += d
                    s = scores(logp, labels, trial)["mean_iou"]
                    if s > best + 1e-5:
                        best, bias, moved = s, trial, True
                        break
    return bias


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="exported model (.ts/.yaml)")
    ap.add_argument("--fit", default="data/val1k", help="split the biases are fitted on")
    ap.add_argument("--data", default="data/test", help="split they are scored on")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    from gr_specdiff.data.dataset import SpectrumDataset
    from gr_specdiff.runtime import open_model

    torch.set_num_threads(args.threads)
    model = open_model(args.model)
    fit = log_probabilities(model, SpectrumDataset(args.fit))
    bias = fit_bias(*fit)
    print(f"bias (log-probability) per class {dict(zip(model.classes, bias.round(2)))}, "
          f"fitted on {args.fit}")
    print("| split | bias | mean acc | mean IoU | IoU " + " / ".join(model.classes) + " |")
    print("|---|---|---|---|---|")
    splits = {args.fit: fit, args.data: log_probabilities(model, SpectrumDataset(args.data))}
    for name, split in splits.items():
        for label, b in (("none", np.zeros_like(bias)), ("fitted", bias)):
            m = scores(*split, b)
            ious = " / ".join(f"{100 * v:.1f}" for v in m["per_class_iou"].values())
            print(f"| {name} | {label} | {100 * m['mean_accuracy']:.2f} % | "
                  f"{100 * m['mean_iou']:.2f} % | {ious} % |")


if __name__ == "__main__":
    main()

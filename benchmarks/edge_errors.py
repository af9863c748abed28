# SPDX-License-Identifier: GPL-3.0-or-later
"""Where a model's pixel errors sit: by distance to the nearest label edge.

    .venv/bin/python benchmarks/edge_errors.py --model models/specdiff_default [MORE ...] \
        [--data data/test] [--frames 200] [--block 4]

An edge pixel is one whose label differs from a 4-neighbour's; distance is in pixels
(chessboard), 5 meaning 5 or more. If most errors sit on edges, the map is right in the large
and wrong in the detail the output grid resolves, not in what is where. The last line scores
the labels themselves majority-pooled to ``block x block`` cells and blown back up: the best a
map constant on the stem's blocks could do. Frames are spread evenly over the split; pixels
labelled IGNORE are left out, as in the evaluation.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

MAX_DISTANCE = 5


def edge_distance(labels: np.ndarray) -> np.ndarray:
    """Chessboard distance of every pixel to the nearest label edge, capped at MAX_DISTANCE."""
    from scipy import ndimage

    edge = np.zeros(labels.shape, bool)
    rows, cols = labels[:-1] != labels[1:], labels[:, :-1] != labels[:, 1:]
    edge[:-1] |= rows
    edge[1:] |= rows
    edge[:, :-1] |= cols
    edge[:, 1:] |= cols
    if not edge.any():  # one class everywhere (scipy answers -1 then)
        return np.full(labels.shape, MAX_DISTANCE)
    return np.minimum(ndimage.distance_transform_cdt(~edge, metric="chessboard"), MAX_DISTANCE)


def block_majority(labels: np.ndarray, block: int, n_classes: int = 4) -> np.ndarray:
    """Each ``block x block`` cell's most frequent class (IGNORE not counted), blown back up:
    the argmax of the cell's class fractions, which the latent mask ``F_0`` is made of."""
    import torch

    from gr_specdiff.model.specdiff import mask_to_latent

    f0 = mask_to_latent(torch.from_numpy(labels)[None], n_classes, block)[0]
    return np.repeat(np.repeat(f0.argmax(0).numpy(), block, 0), block, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", nargs="+", required=True, help="exported models (.ts/.yaml)")
    ap.add_argument("--data", default="data/test")
    ap.add_argument("--frames", type=int, default=200, help="frames spread over the split")
    ap.add_argument("--block", type=int, default=4, help="cell of the block oracle (the stem)")
    args = ap.parse_args()
    from gr_specdiff import IGNORE
    from gr_specdiff.data.dataset import SpectrumDataset
    from gr_specdiff.evaluate import confusion_matrix, metrics_from_confusion
    from gr_specdiff.model.export import load_model

    ds = SpectrumDataset(args.data)
    picks = np.linspace(0, len(ds) - 1, min(args.frames, len(ds))).astype(int)
    frames = [(ds[i][0].numpy(), ds[i][1].numpy(), ds.meta(i)["sample_rate"]) for i in picks]
    distances = [edge_distance(lab) for _, lab, _ in frames]
    bins = range(MAX_DISTANCE + 1)
    valid_px = np.zeros(len(bins))
    for (_, lab, _), d in zip(frames, distances):
        valid_px += np.bincount(d[lab != IGNORE].ravel(), minlength=len(bins))
    print(f"{len(frames)} frames of {args.data}; distance to the nearest label edge, pixels")
    print(f"{'':<44}" + "".join(f"{k if k < MAX_DISTANCE else '>=5':>7}" for k in bins)
          + f"{'mean IoU':>10}")
    print(f"{'share of pixels %':<44}" + "".join(f"{v:>7.1f}" for v in 100 * valid_px
                                                 / valid_px.sum()))
    for path in args.model:
        model = load_model(path, device="cpu")
        wrong = np.zeros(len(bins))
        cm = np.zeros((4, 4), np.int64)
        for (feats, lab, rate), d in zip(frames, distances):
            pred = model(model.input(feats, rate))[0][0]
            miss = (pred != lab) & (lab != IGNORE)
            wrong += np.bincount(d[miss].ravel(), minlength=len(bins))
            cm += confusion_matrix(pred, lab)
        iou = 100 * metrics_from_confusion(cm)["mean_iou"]
        name = Path(path).parent.name + "/" + Path(path).stem
        print(f"{name + ': error rate %':<44}" + "".join(f"{v:>7.1f}" for v in 100 * wrong
                                                         / valid_px) + f"{iou:>10.2f}")
        print(f"{name + ': share of errors %':<44}" + "".join(f"{v:>7.1f}" for v in 100 * wrong
                                                             / wrong.sum()))
    cm = sum(confusion_matrix(block_majority(lab, args.block), lab) for _, lab, _ in frames)
    print(f"labels majority-pooled to {args.block} x {args.block} blocks: mean IoU "
          f"{100 * metrics_from_confusion(cm)['mean_iou']:.2f} %")


if __name__ == "__main__":
    main()

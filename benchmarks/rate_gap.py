# SPDX-License-Identifier: GPL-3.0-or-later
"""Where a model loses accuracy at HackRF-class sample rates: mean IoU per rate and SNR band.

    .venv/bin/python benchmarks/rate_gap.py --model models/specdiff_default [--model ...] \
        [--data data/test] [--frames 2000]
    .venv/bin/python benchmarks/rate_gap.py --model energy   # the features alone

`specdiff eval` gives one number per sample rate. This splits each rate by the frame's
in-band SNR (the mean of its signals'), and splits the wrong pixels into *detection* errors
(a signal taken for noise or noise for a signal) and *classification* errors (one signal
class for another). A gap that closes at high SNR and is made of detection errors is the
spectrogram's sensitivity (fewer FFTs averaged per row at a lower rate), which no network
change can recover; a gap of classification errors is the model's. ``--model energy`` (the
energy detector: a fixed threshold on the mean-power channel, nothing learned) probes the
features themselves; its table gives occupancy IoU (signal vs noise) and detection errors.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

SNR_BANDS = ((-np.inf, 0.0), (0.0, 10.0), (10.0, 20.0), (20.0, np.inf))


def _band(snr: float) -> int:
    return next(k for k, (lo, hi) in enumerate(SNR_BANDS) if lo <= snr < hi)


def _band_name(k: int) -> str:
    lo, hi = SNR_BANDS[k]
    return f"< {hi:g} dB" if lo == -np.inf else f">= {lo:g} dB" if hi == np.inf else \
        f"{lo:g}..{hi:g} dB"


def confusions(model_path: str, data: str, frames: int) -> dict:
    """``{(rate, band): confusion matrix}`` of one exported model on the first ``frames``."""
    from gr_specdiff.evaluate import confusion_matrix, frame_snr, predict_dataset
    from gr_specdiff.model.export import load_model
    from gr_specdiff.train import open_dataset

    if model_path == "energy":
        import torch

        from gr_specdiff.model.baselines import EnergyDetector

        detector = EnergyDetector()

        def model(x):
            return detector(torch.as_tensor(x))[0].numpy(), None

        rate_channel = False
    else:
        model = load_model(model_path, device="cpu")
        rate_channel = model.rate_channel
    ds = open_dataset(data, rate_channel=rate_channel)
    cms: dict = defaultdict(lambda: np.zeros((4, 4), np.int64))
    for i, _x, labels, cls in predict_dataset(model, ds, list(range(min(frames, len(ds))))):
        meta = ds.meta(i)
        snr = frame_snr(meta)
        band = -1 if snr is None else _band(snr)  # -1: no signal; only in the "all" column
        cms[(float(meta["sample_rate"]), band)] += confusion_matrix(cls, labels)
    return dict(cms)


def summary(cm: np.ndarray, occupancy: bool = False) -> tuple[float, float, float]:
    """``(mean IoU, detection errors, classification errors)`` (errors as pixel fractions);
    with ``occupancy`` the signal-vs-noise IoU in place of the mean IoU."""
    from gr_specdiff.evaluate import metrics_from_confusion

    total = cm.sum()
    missed, false_alarm = cm[1:, 0].sum(), cm[0, 1:].sum()
    detection = (missed + false_alarm) / total
    wrong = (total - np.trace(cm)) / total
    if occupancy:
        found = cm[1:, 1:].sum()
        return found / max(found + missed + false_alarm, 1), detection, float("nan")
    return metrics_from_confusion(cm)["mean_iou"], detection, wrong - detection


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True,
                    help="exported model (.ts/.yaml or its stem); repeat to compare")
    ap.add_argument("--data", default="data/test")
    ap.add_argument("--frames", type=int, default=2000, help="first N frames of the split")
    args = ap.parse_args()
    for path in args.model:
        cms = confusions(path, args.data, args.frames)
        rates = sorted({r for r, _ in cms}, reverse=True)
        occupancy = path == "energy"
        what = "occupancy IoU" if occupancy else "mean IoU"
        print(f"\n{path} on the first {args.frames} frames of {args.data}: {what} % "
              "(gap to the highest rate) / detection + classification error %")
        print(f"{'rate MS/s':>9} | " + " | ".join(f"{_band_name(k):>22}" for k in
                                                  range(len(SNR_BANDS))) + f" | {'all':>22}")
        top = {}
        for rate in rates:
            cells = []
            for k in [*range(len(SNR_BANDS)), None]:
                cm = sum((c for (r, b), c in cms.items() if r == rate and (k is None or k == b)),
                         np.zeros((4, 4), np.int64))
                if not cm.sum():
                    cells.append(f"{'-':>22}")
                    continue
                miou, det, cls = summary(cm, occupancy)
                if rate == rates[0]:
                    top[k] = miou
                gap = f"{100 * (miou - top[k]):+5.1f}" if k in top else f"{'':5}"
                errors = f"{100 * det:4.1f}+{100 * cls:4.1f}" if not occupancy else \
                    f"{100 * det:9.1f}"
                cells.append(f"{100 * miou:5.1f} ({gap}) {errors}")
            print(f"{rate / 1e6:>9g} | " + " | ".join(cells))


if __name__ == "__main__":
    main()

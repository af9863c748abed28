# SPDX-License-Identifier: GPL-3.0-or-later
"""Radar recall and IoU per radar kind, on test frames whose radar is strong.

    .venv/bin/python benchmarks/radar_recall.py --model models/specdiff_default \
        [--data data/test] [--frames 600] [--min-snr 15]

`specdiff eval` reports radar as one class; this splits it by the generator's radar kinds
(ASR, LFM, Barker, rect, weather) to show which waveforms a model misses when SNR is not the
excuse. Pixels labelled IGNORE are left out, as in the evaluation.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="exported model (.ts/.yaml or its stem)")
    ap.add_argument("--data", default="data/test")
    ap.add_argument("--frames", type=int, default=600, help="first N frames of the split")
    ap.add_argument("--min-snr", type=float, default=15.0, help="in-band SNR of the radar, dB")
    args = ap.parse_args()
    from gr_specdiff import IGNORE, RADAR
    from gr_specdiff.data.dataset import SpectrumDataset
    from gr_specdiff.model.export import load_model

    ds = SpectrumDataset(args.data)
    model = load_model(args.model, device="cpu")
    counts = defaultdict(lambda: np.zeros(4, np.int64))  # frames, labelled, hit, false alarm
    for i in range(min(args.frames, len(ds))):
        radars = [s for s in ds.meta(i)["signals"] if s["kind"] == "radar"]
        if not radars or max(s["snr_db"] for s in radars) < args.min_snr:
            continue
        feats, labels, _ = ds[i]
        labels = labels.numpy()
        pred = model(model.input(feats.numpy(), ds.meta(i)["sample_rate"]))[0][0]
        truth, found = labels == RADAR, (pred == RADAR) & (labels != IGNORE)
        kind = max(radars, key=lambda s: s["snr_db"])["params"]["kind"]
        counts[kind] += [1, truth.sum(), (truth & found).sum(), (found & ~truth).sum()]
    print(f"radar >= {args.min_snr:g} dB in-band, first {args.frames} frames of {args.data}, "
          f"model {args.model}")
    print(f"{'kind':<9} {'frames':>6} {'pixels':>9} {'recall':>7} {'IoU':>6}")
    for kind, (n, lab, hit, fa) in sorted(counts.items()):
        print(f"{kind:<9} {n:>6} {lab:>9} {hit / max(lab, 1):>7.1%} {hit / max(lab + fa, 1):>6.1%}")


if __name__ == "__main__":
    main()

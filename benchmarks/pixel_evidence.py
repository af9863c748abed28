# SPDX-License-Identifier: GPL-3.0-or-later
"""How many labelled pixels show their signal in their own spectrogram cell, per class and SNR.

    .venv/bin/python benchmarks/pixel_evidence.py [--data data/test] [--frames 2000]

The labels mark every resource element and pulse that is transmitted, however weak. This asks
the features, not a model: a pixel is *visible* when its mean or its peak channel is above
the 99th percentile of the same channel over the frame's noise-labelled pixels away from any
signal (so about 2 % of clean noise pixels are "visible" too). Below 0 dB in-band most signal
pixels are not, and a model can label them only from context (a carrier's extent, a radar's
PRI ladder) or not at all; the *visibility oracle* (every visible pixel given its true class,
every other pixel noise) shows what per-pixel evidence alone would score. It is not a bound on
a network, which sees neighbourhoods, but it says where the labels ask for more than a cell
holds. The *extent oracle* knows every carrier's columns and nothing of its scheduling: each
column holding NR (LTE) labels is NR (LTE) in every row, radar is given as labelled. Where the
resource elements are invisible, a model can at best find the carriers, and this is what
finding them perfectly scores: every carrier pixel found (accuracy 100 %), IoU paid for the
unscheduled ones.

Three binnings: by the frame's SNR (the mean of its signals' in-band SNRs, as Fig. 2 of
docs/RESULTS.md), by the in-band SNR of the strongest signal of the pixel's own class, and by
sample rate (where a 40 ms frame holds fewer samples, a cell averages fewer FFTs and its noise
is rougher: the HackRF-class gap of docs/RESULTS.md, "Per sample rate"); then radar by kind
where the frame's strongest radar is >= 15 dB in-band (as benchmarks/radar_recall.py splits a
model's recall).
"""

from __future__ import annotations

import argparse

import numpy as np

from gr_specdiff import LTE, NR, RADAR

EDGES = (-10, -5, 0, 5, 10, 15, 20, 30, 50)
#: Noise pixels this close to a signal label (rows or columns) carry its window leakage and
#: filter skirts: the noise reference leaves them out.
GUARD = 8


def _bin(snr: float) -> int | None:
    if snr is None or not EDGES[0] <= snr < EDGES[-1]:
        return None
    return int(np.searchsorted(EDGES, snr, side="right") - 1)


def visible_mask(feats: np.ndarray, labels: np.ndarray, noise_class: int, ignore: int,
                 quantile: float = 0.99) -> np.ndarray | None:
    """Pixels whose mean or peak channel exceeds ``quantile`` of that channel over the frame's
    noise-labelled pixels at least ``GUARD`` pixels from any signal label (None when the frame
    has too few of them to say)."""
    from scipy.ndimage import binary_dilation

    near = binary_dilation((labels != noise_class) & (labels != ignore),
                           structure=np.ones((2 * GUARD + 1,) * 2, bool))
    noise = (labels == noise_class) & ~near
    if noise.sum() < 500:
        return None
    mean_t, peak_t = (np.quantile(feats[c][noise], quantile) for c in (0, 1))
    return ((feats[0] > mean_t) | (feats[1] > peak_t)) & (labels != ignore)


def extent_oracle(labels: np.ndarray, carriers=(NR, LTE), radar: int = RADAR) -> np.ndarray:
    """Each carrier class painted over every row of the columns it labels; radar as labelled
    (the generator never puts two carrier classes in one column)."""
    out = np.zeros_like(labels)
    for c in carriers:
        out[:, (labels == c).any(0)] = c
    out[labels == radar] = radar
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/test")
    ap.add_argument("--frames", type=int, default=2000, help="first N frames of the split")
    args = ap.parse_args()
    from gr_specdiff import CLASSES, IGNORE, NOISE
    from gr_specdiff.data.dataset import SpectrumDataset
    from gr_specdiff.evaluate import confusion_matrix, frame_snr, metrics_from_confusion
    from gr_specdiff.scene.labels import CLASS_INDEX

    ds = SpectrumDataset(args.data)
    n_bins, n_cls = len(EDGES) - 1, len(CLASSES)
    frames = np.zeros(n_bins, np.int64)
    by_frame = np.zeros((n_bins, n_cls, 2), np.int64)   # labelled, visible
    by_class = np.zeros((n_bins, n_cls, 2), np.int64)
    oracle = np.zeros((n_bins, n_cls, n_cls), np.int64)
    extent = np.zeros((n_bins, n_cls, n_cls), np.int64)
    radar_kinds: dict[str, np.ndarray] = {}             # kind -> labelled, visible
    by_rate: dict[float, dict] = {}                     # rate -> the by-frame sums, all SNRs
    skipped = 0
    for i in range(min(args.frames, len(ds))):
        feats, labels, _ = ds[i]
        feats, labels = feats.numpy(), labels.numpy()
        visible = visible_mask(feats, labels, NOISE, IGNORE)
        meta = ds.meta(i)
        b = _bin(frame_snr(meta))
        if visible is None or b is None:
            skipped += 1
            continue
        frames[b] += 1
        vis_cm = confusion_matrix(np.where(visible, labels, NOISE), labels)
        ext_cm = confusion_matrix(extent_oracle(labels), labels)
        oracle[b] += vis_cm
        extent[b] += ext_cm
        rate = by_rate.setdefault(float(meta["sample_rate"]), {
            "frames": 0, "seen": np.zeros((n_cls, 2), np.int64),
            "oracle": np.zeros((n_cls, n_cls), np.int64),
            "extent": np.zeros((n_cls, n_cls), np.int64)})
        rate["frames"] += 1
        rate["oracle"] += vis_cm
        rate["extent"] += ext_cm
        for c in range(1, n_cls):
            own = labels == c
            if not own.any():
                continue
            counts = (own.sum(), (own & visible).sum())
            by_frame[b, c] += counts
            rate["seen"][c] += counts
            snrs = [s["snr_db"] for s in meta["signals"] if CLASS_INDEX.get(s["kind"]) == c]
            bc = _bin(max(snrs)) if snrs else None
            if bc is not None:
                by_class[bc, c] += counts
            if c == RADAR:
                strongest = max((s for s in meta["signals"] if s["kind"] == "radar"),
                                key=lambda s: s["snr_db"])
                if strongest["snr_db"] >= 15:
                    kind = strongest["params"]["kind"]
                    radar_kinds.setdefault(kind, np.zeros(2, np.int64))[:] += counts

    def pct(num, den):
        return f"{100 * num / den:5.1f}" if den else "    -"

    def band(b):
        return f"{EDGES[b]:+d}..{EDGES[b + 1]:+d}"

    print(f"{args.data}: {frames.sum()} frames ({skipped} outside -10..50 dB or with under "
          "500 clean noise pixels); visible = mean or peak above the frame's noise 99th percentile")
    print("\nby frame SNR (Fig. 2's bins): % of each class's labelled pixels visible; the "
          "visibility oracle's mean IoU; the extent oracle's mean IoU and NR / LTE IoU")
    print(f"{'SNR dB':>9} {'frames':>6} {'NR':>6} {'LTE':>6} {'radar':>6} {'visibility':>11} "
          f"{'extent':>7} {'NR / LTE':>12}")

    def row(name, n, seen, vis_cm, ext_cm):
        vis, ext = metrics_from_confusion(vis_cm), metrics_from_confusion(ext_cm)
        cells = " ".join(f"{pct(v, k):>6}" for k, v in seen)
        carriers = " / ".join("-" if ext["per_class_iou"][c] is None
                              else f"{100 * ext['per_class_iou'][c]:.1f}" for c in CLASSES[1:3])
        print(f"{name:>9} {n:>6} {cells} {100 * vis['mean_iou']:>11.1f} "
              f"{100 * ext['mean_iou']:>7.1f} {carriers:>12}")

    for b in range(n_bins):
        if frames[b]:
            row(band(b), frames[b], by_frame[b, 1:], oracle[b], extent[b])
    row("all", frames.sum(), by_frame.sum(0)[1:], oracle.sum(0), extent.sum(0))
    print("\nby the in-band SNR of the class's own strongest signal: % visible (labelled "
          "pixels, thousands)")
    print(f"{'SNR dB':>9} " + " ".join(f"{name:>15}" for name in CLASSES[1:]))
    for b in range(n_bins):
        cells = [f"{pct(v, n)} ({n / 1e3:6.0f})" if n else f"{'-':>15}"
                 for n, v in by_class[b, 1:]]
        if any(n for n, _ in by_class[b, 1:]):
            print(f"{band(b):>9} " + " ".join(f"{c:>15}" for c in cells))
    print("\nby sample rate (all SNRs): as the first table")
    print(f"{'MS/s':>9} {'frames':>6} {'NR':>6} {'LTE':>6} {'radar':>6} {'visibility':>11} "
          f"{'extent':>7} {'NR / LTE':>12}")
    for fs, r in sorted(by_rate.items(), reverse=True):
        row(f"{fs / 1e6:g}", r["frames"], r["seen"][1:], r["oracle"], r["extent"])
    print("\nradar >= 15 dB in-band, by the strongest radar's kind: % visible (labelled pixels)")
    for kind, (n, v) in sorted(radar_kinds.items()):
        print(f"{kind:>9} {pct(v, n)} ({n})")


if __name__ == "__main__":
    main()

# SPDX-License-Identifier: GPL-3.0-or-later
"""PNG grid of spectrograms with their label overlays (``specdiff datagen --preview``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gr_specdiff import CLASS_COLORS, IGNORE, IGNORE_COLOR, NOISE

# Noise transparent; the package palette for the classes and IGNORE (0..1 for matplotlib).
COLOURS = {k: tuple(c / 255 for c in rgb) for k, rgb in
           {**{k: v for k, v in CLASS_COLORS.items() if k != NOISE}, IGNORE: IGNORE_COLOR}.items()}


def _title(meta: dict) -> str:
    parts = []
    for s in meta.get("signals", []):
        p = s.get("params", {})
        if s["kind"] == "radar":
            what = p.get("kind", "")
        else:
            what = f"{p.get('bw_mhz', '')}M{p.get('duplex', '')[:1]}"
        parts.append(f"{s['kind']}{what} {s['snr_db']:.0f}dB")
    rate = meta.get("sample_rate", 0) / 1e6
    return f"{rate:g}MS/s " + (", ".join(parts) or "noise only")


def preview_grid(features, labels, metas, path: str | Path, cols: int = 4) -> Path:
    """Peak-power channel in grey, labels as a translucent colour overlay, one panel a frame
    (left: spectrogram, right: spectrogram + labels)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(features)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, 2 * cols, figsize=(4.2 * cols, 2.3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(n):
        r, c = divmod(i, cols)
        img = np.asarray(features[i][1], np.float32)
        a0, a1 = axes[r, 2 * c], axes[r, 2 * c + 1]
        a0.imshow(img, cmap="gray", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        a1.imshow(img, cmap="gray", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        over = np.zeros(img.shape + (4,), np.float32)
        lab = np.asarray(labels[i])
        for k, col in COLOURS.items():
            m = lab == k
            over[m, :3] = col
            over[m, 3] = 0.45
        a1.imshow(over, aspect="auto", interpolation="nearest")
        a0.set_title(_title(metas[i]), fontsize=6, loc="left")
    if n > 1:
        fig.suptitle("peak-power spectrogram (time down, frequency right) | labels: "
                     "NR green, LTE blue, radar red, ignore yellow", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

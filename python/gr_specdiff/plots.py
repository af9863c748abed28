# SPDX-License-Identifier: GPL-3.0-or-later
"""Matplotlib figures of spectrogram features (headless, Agg backend)."""

from __future__ import annotations

from pathlib import Path

from gr_specdiff import spectrogram as sg

_TITLES = ("mean power (dB re floor)", "peak power (dB re floor)", "peak - mean (dB)")
_RANGES = ((sg.DB_LOW, sg.DB_HIGH), (sg.DB_LOW, sg.DB_HIGH), (0.0, sg.CONTRAST_HIGH))


def plot_features(spec: sg.Spectrogram, path: Path, title: str = "") -> None:
    """Three channels side by side, in physical units, with time/frequency axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    geo = spec.geometry
    extent = (geo.col_freqs[0] / 1e6 - geo.col_width / 2e6,
              geo.col_freqs[-1] / 1e6 + geo.col_width / 2e6,
              geo.n_samples / geo.sample_rate * 1e3, 0.0)
    fig, axes = plt.subplots(1, 3, figsize=(15, 5), constrained_layout=True)
    for ax, chan, name, (lo, hi) in zip(axes, spec.features, _TITLES, _RANGES):
        im = ax.imshow(lo + chan * (hi - lo), extent=extent, aspect="auto", cmap="viridis",
                       vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(name)
        ax.set_xlabel("frequency offset (MHz)")
        ax.set_ylabel("time (ms)")
        fig.colorbar(im, ax=ax, shrink=0.8)
    if title:
        fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


# SPDX-License-Identifier: GPL-3.0-or-later
"""``specdiff demo``: the main job on an embedded default input."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("demo", help="spectrogram of a built-in mixed test signal, as a PNG",
                       description="Compute the shared spectrogram features of a built-in "
                       "40 ms test signal (tone + burst + 1 us pulses + noise) and write a PNG.")
    p.add_argument("--out", default="out/demo_spectrogram.png", help="PNG to write")
    p.add_argument("--rate", type=float, default=61.44e6, help="sample rate in samples/s")
    p.set_defaults(func=run)


def run(args) -> int:
    from gr_specdiff.plots import plot_features
    from gr_specdiff.spectrogram import compute_features
    from gr_specdiff.testsignal import mixed_test_signal

    spec = compute_features(mixed_test_signal(args.rate), args.rate)
    out = Path(args.out)
    plot_features(spec, out, title=f"mixed test signal, 40 ms at {args.rate / 1e6:g} MS/s")
    print(f"wrote {out}")
    return 0

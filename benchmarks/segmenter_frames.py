# SPDX-License-Identifier: GPL-3.0-or-later
"""Real segmenter output for the display and message benchmarks: synthetic NR + LTE + radar
scenes through ``runtime.analyse_frame`` with a model, as a live flowgraph produces them."""

from __future__ import annotations

import time

import numpy as np

CENTER_FREQ = 2.4e9


def analysed_frames(model_path: str, n: int, rate: float = 20e6) -> list:
    """``n`` ``runtime.FrameResult`` of consecutive 40 ms frames (scene seeds 100, 101, ...)."""
    from gr_specdiff import runtime as rt
    from gr_specdiff.scene import LTESpec, NRSpec, RadarSpec, SceneSpec, generate

    model = rt.open_model(model_path, device="cpu")
    spec = SceneSpec(nr=[NRSpec()], lte=[LTESpec()], radar=[RadarSpec()])
    results = []
    for i in range(n):
        sc = generate(np.random.default_rng(100 + i), rate, 0.04, spec)
        job = rt.FrameJob(i, i * len(sc.iq), sc.iq, rate, CENTER_FREQ, i * 0.04, len(sc.iq),
                          time.monotonic())
        results.append(rt.analyse_frame(model, job))
    return results

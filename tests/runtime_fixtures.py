# SPDX-License-Identifier: GPL-3.0-or-later
"""Test models and signals for the runtime/block tests (no trained model needed).

* :class:`ThresholdNet`: TorchScript-able; labels every pixel whose peak-power feature is
  more than ``threshold_db`` above the noise floor as class ``label``; confidence = feature.
* :class:`ThresholdNetWithProbabilities`: the same with ``probabilities`` (one-hot), as every
  pipeline exports it, so test-time flips can wrap it; plain ``ThresholdNet`` stands for a
  model exported before flips existed.
* :class:`SlowModel`: an in-process model that sleeps (drop-policy tests).
* :func:`export_threshold_model`: exports a ThresholdNet with a card via ``export_model``.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from gr_specdiff import spectrogram as sg


class ThresholdNet(torch.nn.Module):
    def __init__(self, threshold_db: float = 20.0, label: int = 1):
        super().__init__()
        self.threshold = float((threshold_db - sg.DB_LOW) / (sg.DB_HIGH - sg.DB_LOW))
        self.label = int(label)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        peak = x[:, 1]
        cls = (peak > self.threshold).to(torch.uint8) * self.label
        return cls, peak.to(torch.float32)


class ThresholdNetWithProbabilities(ThresholdNet):
    @torch.jit.export
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        cls = self.forward(x)[0].long()
        return torch.nn.functional.one_hot(cls, 4).permute(0, 3, 1, 2).to(torch.float32)


class InProcessModel:
    """Duck-typed ExportedModel around an eager module (no file)."""

    def __init__(self, module=None, sample_rates=(1e6,), frame_seconds=0.002, delay=0.0):
        self.module = module if module is not None else ThresholdNet()
        self.card = {"name": "test-threshold", "classes": ["noise", "NR", "LTE", "radar"],
                     "sample_rates": list(sample_rates), "frame_seconds": frame_seconds}
        self.device = "cpu"
        self.delay = delay
        self.calls = 0

    def __call__(self, features):
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        with torch.inference_mode():
            c, p = self.module(torch.as_tensor(np.asarray(features, np.float32)))
        return c.numpy(), p.numpy()


def SlowModel(delay=0.2, **kw):  # noqa: N802 - reads like a class in tests
    return InProcessModel(delay=delay, **kw)


def export_threshold_model(path, sample_rates=(1e6,), frame_seconds=0.002, label=1,
                           probabilities=False):
    from gr_specdiff.model.export import export_model

    net = (ThresholdNetWithProbabilities if probabilities else ThresholdNet)(label=label)
    return export_model(net, path,
                        {"name": "test-threshold", "sample_rates": list(sample_rates),
                         "frame_seconds": frame_seconds})


def tone_frames(n, rate=1e6, freq=200e3, snr_db=30.0, seed=0, burst=None):
    """Complex noise (unit power) plus a tone at ``freq`` (optionally only in ``burst``)."""
    rng = np.random.default_rng(seed)
    noise = (rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)
    t = np.arange(n) / rate
    tone = 10 ** (snr_db / 20) * np.exp(2j * np.pi * freq * t)
    if burst is not None:
        mask = np.zeros(n, bool)
        mask[burst[0]:burst[1]] = True
        tone = tone * mask
    return (noise + tone).astype(np.complex64)

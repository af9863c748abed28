# SPDX-License-Identifier: GPL-3.0-or-later
"""A deterministic mixed test signal (tone + burst + radar-like pulses + noise).

Used by ``specdiff demo`` and the documentation figure; independent of the scene generator
so the front end can be checked on its own.
"""

from __future__ import annotations

import numpy as np


def mixed_test_signal(sample_rate: float = 61.44e6, seconds: float = 0.04,
                      seed: int = 0) -> np.ndarray:
    """Unit-power complex noise plus: a tone at +10 MHz,
    a 5 MHz wide noise burst from 10 to 18 ms at -12 MHz, and 1 us pulses every 1 ms at
    +20 MHz (25 dB above the total noise power)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    x = (rng.normal(size=n) + 1j * rng.normal(size=n)) * np.sqrt(0.5)
    x += 0.3 * np.exp(2j * np.pi * 10e6 * t)
    a, b = int(0.010 * sample_rate), int(0.018 * sample_rate)
    burst = rng.normal(size=b - a) + 1j * rng.normal(size=b - a)
    # Band-limit the burst to 5 MHz by zeroing FFT bins, then move it to -12 MHz.
    spec = np.fft.fft(burst)
    f = np.fft.fftfreq(b - a, 1 / sample_rate)
    spec[np.abs(f) > 2.5e6] = 0
    x[a:b] += 3 * np.fft.ifft(spec) * np.exp(-2j * np.pi * 12e6 * t[a:b])
    width = max(1, int(1e-6 * sample_rate))
    for start in range(int(0.0005 * sample_rate), n - width, int(0.001 * sample_rate)):
        x[start:start + width] += np.sqrt(10 ** 2.5) * np.exp(2j * np.pi * 20e6 * t[:width])
    return x.astype(np.complex64)

# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared OFDM machinery for the NR and LTE generators.

A carrier is described by its resource grid ``(n_sym, n_sc)`` (symbols of the generated
stretch x subcarriers, lowest first), the FFT bin of every subcarrier at the native rate, and
the cyclic-prefix length of every symbol. Modulation is one batched IFFT over all symbols and
one gather that prepends the cyclic prefixes, so 40 ms of a 100-PRB carrier costs a few ms.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import scipy.fft

QAM_ORDERS = (4, 16, 64, 256)


@cache
def qam_table(order: int) -> np.ndarray:
    """Gray-free square QAM constellation with unit average power (38.211 5.1 levels)."""
    if order not in QAM_ORDERS:
        raise ValueError(f"QAM order must be one of {QAM_ORDERS}, got {order}")
    m = int(round(np.sqrt(order)))
    levels = np.arange(-(m - 1), m, 2, dtype=np.float64)
    pts = (levels[:, None] + 1j * levels[None, :]).ravel()
    return (pts / np.sqrt(np.mean(np.abs(pts) ** 2))).astype(np.complex64)


def draw_traffic(rng: np.random.Generator, fixed: dict, pdcch_min: float) -> dict:
    """Downlink traffic drawn alike for NR and LTE (fields in ``fixed`` win): PDSCH load
    (12 % idle carriers, 13 % fully loaded, else uniform), PDCCH load, 1-3 QAM orders."""
    u = rng.random()
    load = 0.0 if u < 0.12 else 1.0 if u < 0.25 else float(rng.random())
    return {
        "pdsch_load": float(fixed.get("pdsch_load", load)),
        "pdcch_load": float(fixed.get("pdcch_load", rng.uniform(pdcch_min, 1.0))),
        "qam_orders": fixed.get("qam_orders") or sorted(
            {int(q) for q in rng.choice(QAM_ORDERS, size=int(rng.integers(1, 4)))}),
    }


def qam(rng: np.random.Generator, order: int, shape) -> np.ndarray:
    """Random equiprobable QAM symbols (unit average power)."""
    table = qam_table(order)
    return table[rng.integers(0, order, shape, dtype=np.uint16)]


@dataclass
class OfdmStretch:
    """A generated stretch of one OFDM carrier, before modulation."""

    grid: np.ndarray  # complex64 (n_sym, n_sc)
    cp: np.ndarray  # int64 (n_sym,) cyclic prefix per symbol at the native rate
    nfft: int  # FFT size at the native rate
    bins: np.ndarray  # int64 (n_sc,) FFT bin of each subcarrier (negative = below centre)
    sc_freqs: np.ndarray  # float64 (n_sc,) subcarrier frequency relative to the carrier centre

    @property
    def sym_len(self) -> np.ndarray:
        return self.cp + self.nfft

    @property
    def sym_start(self) -> np.ndarray:
        """First sample (start of CP) of each symbol in the stretch."""
        return np.concatenate([[0], np.cumsum(self.sym_len)[:-1]])


def modulate(st: OfdmStretch, bin_shift: int, workers: int = 1) -> np.ndarray:
    """Time signal of the stretch at the native rate, carrier centre shifted by ``bin_shift``.

    Subcarriers that land outside the native band (an edge-cut carrier) are dropped.
    """
    n_sym, _ = st.grid.shape
    bins = st.bins + bin_shift
    keep = (bins >= -st.nfft // 2) & (bins < st.nfft // 2)
    buf = np.zeros((n_sym, st.nfft), np.complex64)
    # Copy contiguous runs of FFT bins as slices (a fancy-index scatter is several times slower).
    idx = np.nonzero(keep)[0]
    if len(idx):
        dst = bins[idx] % st.nfft
        brk = np.nonzero((np.diff(dst) != 1) | (np.diff(idx) != 1))[0] + 1
        for a, b in zip(np.concatenate([[0], brk]), np.concatenate([brk, [len(idx)]])):
            buf[:, dst[a]:dst[a] + (b - a)] = st.grid[:, idx[a]:idx[a] + (b - a)]
    # Unnormalised IFFT / sqrt(N): unit-power REs give unit-power... scaled later anyway.
    time = scipy.fft.ifft(buf, axis=1, workers=workers, overwrite_x=True)
    time = time.astype(np.complex64, copy=False)
    return add_cp(time, st.cp)


def add_cp(time: np.ndarray, cp: np.ndarray) -> np.ndarray:
    """Concatenate symbols with their cyclic prefixes.

    The CP pattern repeats every ``p`` symbols (a half-subframe); the output is filled through
    a ``(periods, samples per period)`` view with two slice copies per symbol of the period.
    """
    n_sym, nfft = time.shape
    p = _cp_period(cp)
    cp_p = cp[:p]
    lens = cp_p + nfft
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    per = int(lens.sum())
    out = np.empty((n_sym // p, per), np.complex64)
    t3 = time.reshape(n_sym // p, p, nfft)
    for j in range(p):
        c, s0 = int(cp_p[j]), int(starts[j])
        out[:, s0:s0 + c] = t3[:, j, nfft - c:]
        out[:, s0 + c:s0 + c + nfft] = t3[:, j, :]
    # WOLA (as transmitters do to meet their ACLR): raised-cosine ramp over the first W CP
    # samples, and a W-sample cyclic suffix ramping down into the next symbol's CP. Without it
    # the symbol-edge discontinuities splatter across the whole band.
    w = max(2, min(int(cp_p.min()) // 2, nfft // 64))
    up = (0.5 - 0.5 * np.cos(np.pi * (np.arange(w) + 0.5) / w)).astype(np.float32)
    down = up[::-1]
    flat = out.reshape(-1)
    for j in range(p):
        s0 = int(starts[j])
        out[:, s0:s0 + w] *= up
    for j in range(p):
        end = int(starts[j] + lens[j])
        suffix = t3[:, j, :w] * down
        if j < p - 1:
            out[:, end:end + w] += suffix
        else:
            out[1:, :w] += suffix[:-1]
    return flat


def _cp_period(cp: np.ndarray) -> int:
    n = len(cp)
    for p in (7, 14, 28, 56):
        if n % p == 0 and np.array_equal(cp, np.tile(cp[:p], n // p)):
            return p
    return n


def freq_response(delays: np.ndarray, coeffs: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """H(t, f) = sum_l h_l(t) exp(-j 2 pi f tau_l): (n_t, L) @ (L, n_f), one BLAS call."""
    steer = np.exp(-2j * np.pi * np.outer(delays, freqs)).astype(np.complex64)
    return coeffs.astype(np.complex64) @ steer

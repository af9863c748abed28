# SPDX-License-Identifier: GPL-3.0-or-later
"""Pixel labels: per-class bit masks from where each signal has energy, and the single-label
class map (argmax of clean per-signal power density, ties radar > NR > LTE, IGNORE where a
signal is too weak to define). See docs/SCENES.md for the definitions."""

from __future__ import annotations

import numpy as np

from .. import IGNORE, LTE, NOISE, NR, RADAR
from ..spectrogram import N_COLS, N_ROWS, Geometry

#: Signals below this in-band SNR make their pixels IGNORE in the class map.
IGNORE_BELOW_SNR_DB = -15.0
CLASS_INDEX = {"NR": NR, "LTE": LTE, "radar": RADAR}
_PRIORITY = {"radar": 0, "NR": 1, "LTE": 2}


def rows_of_interval(geo: Geometry, t0: np.ndarray, t1: np.ndarray) -> tuple[np.ndarray,
                                                                           np.ndarray]:
    """First and last row touched by each interval [t0, t1) in seconds (clipped to the frame)."""
    n0 = np.clip(np.floor(np.asarray(t0) * geo.sample_rate), 0, geo.n_samples - 1)
    n1 = np.clip(np.ceil(np.asarray(t1) * geo.sample_rate) - 1, 0, geo.n_samples - 1)
    return geo.sample_to_row(n0.astype(np.int64)), geo.sample_to_row(n1.astype(np.int64))


def ofdm_activity_mask(geo: Geometry, active: np.ndarray, t0: np.ndarray, t1: np.ndarray,
                       freqs: np.ndarray) -> np.ndarray:
    """(256, 256) bool: pixels holding any active resource element.

    ``active`` (n_sym, n_sc) bool, symbol intervals ``t0``/``t1`` in s (CP included),
    ``freqs`` (n_sc,) increasing baseband frequency of each subcarrier.
    """
    mask = np.zeros((N_ROWS, N_COLS), bool)
    inside = (t1 > 0) & (t0 < geo.n_samples / geo.sample_rate)
    cols = geo.freq_to_col(freqs)
    ok = (cols >= 0) & (cols < N_COLS)
    if not inside.any() or not ok.any():
        return mask
    act = active[inside][:, ok]
    cols = cols[ok]
    starts = np.concatenate([[0], np.nonzero(np.diff(cols))[0] + 1])
    per_col = np.add.reduceat(act.astype(np.float32), starts, axis=1) > 0  # (n_sym, n_cols)
    r0, r1 = rows_of_interval(geo, t0[inside], t1[inside])
    r = np.arange(N_ROWS)
    sym_rows = ((r[None, :] >= r0[:, None]) & (r[None, :] <= r1[:, None])).astype(np.float32)
    hit = sym_rows.T @ per_col.astype(np.float32)  # (256 rows, n_cols)
    mask[:, cols[starts]] = hit > 0
    return mask


def pulse_row_gain(geo: Geometry, t0, t1, gain) -> np.ndarray:
    """(256,) per row, the power of the strongest pulse touching it (``gain`` per pulse,
    intervals ``t0``/``t1`` in s); 0 where no pulse does. Radar rows are labelled at this
    level, so a scanning radar's sidelobe pulses 30 dB down are not labelled as the main beam."""
    row_gain = np.zeros(N_ROWS)
    t0, t1, gain = np.atleast_1d(t0), np.atleast_1d(t1), np.atleast_1d(gain)
    keep = (t1 > 0) & (t0 < geo.n_samples / geo.sample_rate)
    if keep.any():
        r0, r1 = rows_of_interval(geo, t0[keep], t1[keep])
        for a, b, g in zip(r0, r1, gain[keep]):  # a pulse touches one or two rows
            np.maximum(row_gain[a:b + 1], g, out=row_gain[a:b + 1])
    return row_gain


def row_peak_power(x: np.ndarray, rate: float, geo: Geometry, block: int = 256) -> np.ndarray:
    """Per image row, the largest mean |x|^2 over ``block``-sample windows starting in the row
    at half-block steps: the time-domain counterpart of the front end's max-hold channel."""
    half = block // 2
    nh = len(x) // half
    if nh < 2:
        return np.zeros(N_ROWS)
    v = x[: nh * half].view(np.float32).reshape(nh, 2 * half)
    hp = np.einsum("ij,ij->i", v, v)
    bp = (hp[:-1] + hp[1:]) / block
    t0 = np.arange(nh - 1) * half / rate
    rows = geo.sample_to_row(np.clip((t0 * geo.sample_rate).astype(np.int64), 0,
                                     geo.n_samples - 1))
    out = np.zeros(N_ROWS)
    np.maximum.at(out, rows, bp)
    return out


def class_map(masks_per_signal: list[tuple[str, np.ndarray, np.ndarray, float]]) -> tuple[
        np.ndarray, np.ndarray]:
    """Per-class masks (4, 256, 256) and the single-label map.

    ``masks_per_signal``: (kind, mask (256, 256), density (256, 256) clean power per Hz,
    snr_db). Ties (equal density) go radar > NR > LTE.
    """
    masks = np.zeros((4, N_ROWS, N_COLS), bool)
    cmap = np.full((N_ROWS, N_COLS), NOISE, np.uint8)
    best = np.full((N_ROWS, N_COLS), -np.inf)
    order = sorted(range(len(masks_per_signal)), key=lambda i: _PRIORITY[masks_per_signal[i][0]])
    for i in order:
        kind, m, dens, snr = masks_per_signal[i]
        masks[CLASS_INDEX[kind]] |= m
        d = np.where(m, dens, -np.inf)
        win = d > best
        best = np.where(win, d, best)
        label = IGNORE if snr < IGNORE_BELOW_SNR_DB else CLASS_INDEX[kind]
        cmap[win] = label
    masks[NOISE] = ~masks[1:].any(axis=0)
    return masks, cmap

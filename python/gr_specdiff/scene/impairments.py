# SPDX-License-Identifier: GPL-3.0-or-later
"""Receiver impairments of real SDRs (B210-, HackRF-like): CFO, phase noise, IQ imbalance,
DC/LO leakage, front-end roll-off, AGC back-off, ADC quantisation and clipping.

Applied to the full received frame (signals + thermal noise) in that order: the mixer
(CFO, phase noise, IQ imbalance, LO leakage), the analogue filter, then the ADC.
"""

from __future__ import annotations

import numpy as np

DEVICES = ("ideal", "b210", "hackrf")


def draw(rng: np.random.Generator, rate: float, fixed: dict | None = None,
         center_freq: float = 2.8e9) -> dict:
    fixed = dict(fixed or {})
    dev = fixed.get("device") or str(rng.choice(DEVICES, p=[0.15, 0.5, 0.35]))
    if dev not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {dev!r}")
    p: dict = {"device": dev}
    if dev == "ideal":
        p.update(cfo_ppm=0.0, iq_gain_db=0.0, iq_phase_deg=0.0, dc_dbc=None,
                 phase_noise_deg=0.0, adc_bits=None, agc_backoff_db=None, rolloff=None)
    else:
        ppm = 2.0 if dev == "b210" else 20.0
        p["cfo_ppm"] = float(rng.uniform(-ppm, ppm))
        p["iq_gain_db"] = float(rng.uniform(-1, 1) * (0.3 if dev == "b210" else 1.0))
        p["iq_phase_deg"] = float(rng.uniform(-5, 5) * (0.3 if dev == "b210" else 1.0))
        p["dc_dbc"] = float(rng.uniform(-50, -30)) if rng.random() < 0.8 else None
        p["phase_noise_deg"] = float(rng.uniform(0.3, 1.5))
        p["adc_bits"] = 12 if dev == "b210" else 8
        # AGC: RMS this many dB below full scale; strong radar pulses above it clip.
        p["agc_backoff_db"] = float(rng.uniform(8, 20) if dev == "b210" else rng.uniform(6, 15))
        # Analogue filter roll-off beyond a corner at 40-48 % of the sample rate.
        p["rolloff"] = ({"corner_frac": float(rng.uniform(0.40, 0.48)),
                         "slope_db_per_mhz": float(rng.uniform(1, 6))}
                        if rng.random() < 0.6 else None)
    p["cfo_hz"] = float(p["cfo_ppm"] * 1e-6 * center_freq)
    for k, v in fixed.items():
        p[k] = v
    return p


def rolloff_response(p: dict, freqs: np.ndarray, rate: float) -> np.ndarray:
    """Amplitude response of the front-end filter at baseband frequencies ``freqs`` (Hz)."""
    r = p.get("rolloff")
    if not r:
        return np.ones_like(freqs, dtype=np.float32)
    over = np.maximum(np.abs(freqs) - r["corner_frac"] * rate, 0) / 1e6
    return (10 ** (-r["slope_db_per_mhz"] * over ** 1.5 / 20)).astype(np.float32)


def _blocks(x: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
    """(m, step) view of the whole blocks of ``x`` and the remaining tail."""
    m = len(x) // step
    return x[: m * step].reshape(m, step), x[m * step:]


def apply(x: np.ndarray, p: dict, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Impair the received frame IN PLACE (``x`` complex64, contiguous); returns it.

    Every stage is one or two in-place passes over the frame (this runs for every training
    frame): block-wise phasors instead of per-sample complex exponentials.
    """
    x = np.ascontiguousarray(x, dtype=np.complex64)
    n = len(x)
    # CFO + phase noise: phasor = coarse (per 64-sample block) x fine (within-block) ramp;
    # the phase-noise process is low-pass, so holding it over 64 samples is harmless.
    cfo = p.get("cfo_hz", 0.0)
    pn = p.get("phase_noise_deg", 0.0)
    if cfo or pn:
        step = 64
        m = -(-n // step)
        coarse = 2 * np.pi * cfo / rate * step * np.arange(m)
        if pn:
            w = rng.standard_normal(m + 63)
            k = np.hanning(64)
            coarse = coarse + np.deg2rad(pn) * np.convolve(
                w, k / np.sqrt(np.sum(k ** 2)), mode="valid")[:m]
        fine = np.exp(1j * 2 * np.pi * cfo / rate * np.arange(step)).astype(np.complex64)
        cph = np.exp(1j * coarse).astype(np.complex64)
        body, tail = _blocks(x, step)
        body *= fine[None, :]
        body *= cph[: len(body), None]
        if len(tail):
            tail *= fine[: len(tail)] * cph[-1]
    # IQ imbalance y = K1 x + K2 x*, K1 = (1 + g e^-jphi)/2, K2 = (1 - g e^jphi)/2, which is
    # I' = I, Q' = g (Q cos phi - I sin phi): one pass over the Q components.
    g = 10 ** (p.get("iq_gain_db", 0.0) / 20)
    ph = np.deg2rad(p.get("iq_phase_deg", 0.0))
    if g != 1 or ph:
        v = x.view(np.float32)
        q = v[1::2]
        q *= np.float32(g * np.cos(ph))
        q -= np.float32(g * np.sin(ph)) * v[0::2]
    # LO leakage: a slowly drifting carrier at DC (<= 200 Hz: constant over 256 samples),
    # level relative to the total power.
    if p.get("dc_dbc") is not None:
        level = np.sqrt(np.mean(np.abs(x[::97]) ** 2) * 10 ** (p["dc_dbc"] / 10))
        step = 256
        m = -(-n // step)
        w = 2 * np.pi * rng.uniform(-200, 200) / rate
        leak = (level * np.exp(1j * (w * step * np.arange(m) + rng.uniform(-np.pi, np.pi))))
        leak = leak.astype(np.complex64)
        body, tail = _blocks(x, step)
        body += leak[: len(body), None]
        if len(tail):
            tail += leak[-1]
    bits = p.get("adc_bits")
    if bits:
        rms = np.sqrt(np.mean(np.abs(x[::31]) ** 2)) + 1e-30
        full = rms * 10 ** (p["agc_backoff_db"] / 20)
        q = 2 ** (bits - 1) - 1
        v = x.view(np.float32)
        v *= np.float32(q / full)
        np.rint(v, out=v)
        np.clip(v, -q, q, out=v)
        v *= np.float32(full / q)  # keep the original scale (noise variance 1)
    return x

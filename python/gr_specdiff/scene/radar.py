# SPDX-License-Identifier: GPL-3.0-or-later
"""Pulsed radars: S-band airport surveillance radar (ASR) and a variety of other emitters.

A radar is one or more pulse *components* (waveform, width, bandwidth, frequency offset, delay
within the PRI) repeated on a pulse-repetition schedule (staggered / jittered PRI), with a
per-pulse amplitude from the antenna scan (main beam or sidelobes). Numbers marked with a
warning in WAVEFORMS.md section 3 are plausible defaults, not confirmed system parameters.
"""

from __future__ import annotations

import numpy as np

KINDS = ("asr", "lfm", "barker", "rect", "weather")
BARKER13 = np.array([1, 1, 1, 1, 1, -1, -1, 1, 1, -1, 1, -1, 1], np.float32)


def draw(rng: np.random.Generator, rate: float, fixed: dict | None = None) -> dict:
    """Every parameter of one radar; ``fixed`` overrides (kind, width_s, bandwidth_hz, prf_hz)."""
    fixed = dict(fixed or {})
    if "components" in fixed:  # a complete parameter set (dataset variants): reuse it
        p = draw(rng, rate, {"kind": fixed.get("kind", "rect")})
        p.update({k: v for k, v in fixed.items() if k in p})
        return p
    kind = fixed.get("kind") or str(rng.choice(KINDS, p=[0.4, 0.2, 0.12, 0.14, 0.14]))
    if kind not in KINDS:
        raise ValueError(f"radar kind must be one of {KINDS}, got {kind!r}")
    bmax = 0.8 * rate
    p: dict = {"kind": kind}
    comps: list[dict] = []
    if kind == "asr":
        # ASR-11/ASR-E like: 1 us pulse plus a long pulse-compressed LFM pulse on a second
        # frequency a few MHz away (widths 45-80 us after radartutorial, chirp B assumed).
        comps.append({"waveform": "rect", "width_s": float(fixed.get("width_s", 1e-6)),
                      "f_offset_hz": 0.0, "delay_s": 0.0})
        if rng.random() < 0.75:
            comps.append({"waveform": "lfm", "width_s": float(rng.uniform(45e-6, 80e-6)),
                          "bandwidth_hz": float(rng.uniform(0.5e6, 2.5e6)),
                          "f_offset_hz": float(rng.choice([-1, 1]) * rng.uniform(2e6, 6e6)),
                          "delay_s": float(rng.uniform(3e-6, 10e-6)),
                          "up": bool(rng.random() < 0.5)})
        prf = float(fixed.get("prf_hz", rng.uniform(950, 1300)))
        stagger = int(rng.choice([2, 4, 5, 8]))
        stagger_dev = 0.06
        jitter = 0.0
        scan = {"rpm": float(rng.choice([12.0, 12.5, 15.0])), "beamwidth_deg": 1.4,
                "sidelobe_db": float(rng.uniform(-35, -25))}
    elif kind == "weather":
        w = float(fixed.get("width_s", rng.choice([1.57e-6, 4.5e-6])))
        comps.append({"waveform": "rect", "width_s": w, "f_offset_hz": 0.0, "delay_s": 0.0})
        prf = float(fixed.get("prf_hz", rng.uniform(322, 1282)))
        stagger, stagger_dev, jitter = 1, 0.0, 0.0
        scan = {"rpm": float(rng.uniform(2, 5)), "beamwidth_deg": 0.96,
                "sidelobe_db": float(rng.uniform(-35, -27))}
    else:
        if kind == "lfm":
            w = float(fixed.get("width_s", np.exp(rng.uniform(np.log(1e-6), np.log(100e-6)))))
            b = float(fixed.get("bandwidth_hz", rng.uniform(1e6, min(20e6, bmax))))
            comps.append({"waveform": "lfm", "width_s": w, "bandwidth_hz": b,
                          "f_offset_hz": 0.0, "delay_s": 0.0, "up": bool(rng.random() < 0.5)})
        elif kind == "barker":
            chip = float(rng.uniform(max(0.1e-6, 13 / bmax / 13), 1e-6))
            w = float(fixed.get("width_s", 13 * chip))
            comps.append({"waveform": "barker13", "width_s": w, "f_offset_hz": 0.0,
                          "delay_s": 0.0})
        else:
            w = float(fixed.get("width_s", rng.uniform(0.5e-6, 10e-6)))
            comps.append({"waveform": "rect", "width_s": w, "f_offset_hz": 0.0, "delay_s": 0.0})
        pri_min = max(10 * w, 100e-6)
        prf = float(fixed.get("prf_hz", 1 / rng.uniform(pri_min, max(3e-3, 2 * pri_min))))
        stagger = int(rng.choice([1, 1, 2, 3]))
        stagger_dev = float(rng.uniform(0.02, 0.15)) if stagger > 1 else 0.0
        jitter = float(rng.choice([0.0, rng.uniform(0.005, 0.1)]))
        scan = None if rng.random() < 0.5 else {
            "rpm": float(rng.uniform(5, 60)), "beamwidth_deg": float(rng.uniform(1, 4)),
            "sidelobe_db": float(rng.uniform(-35, -20))}
    p["components"] = comps
    p["prf_hz"] = prf
    p["stagger_ratios"] = [1.0] if stagger == 1 else [
        float(1 + r) for r in rng.uniform(-stagger_dev, stagger_dev, stagger)]
    p["pri_jitter"] = float(fixed.get("pri_jitter", jitter))
    p["scan"] = scan
    if scan is not None:
        # A fixed receiver sees the main beam in ~1% of frames; bias it up for training.
        p["main_beam"] = bool(fixed.get("main_beam", rng.random() < 0.25))
        p["beam_time_s"] = float(rng.uniform(0, 0.04))
    p["first_pulse_s"] = float(rng.uniform(0, 1 / prf))
    p["coherent"] = bool(rng.random() < 0.5)
    # Any other drawn parameter can be fixed too (stagger_ratios, scan=None, coherent, ...).
    for k in ("stagger_ratios", "scan", "main_beam", "beam_time_s", "first_pulse_s",
              "coherent"):
        if k in fixed:
            p[k] = fixed[k]
    return p


def nominal_bandwidth(c: dict) -> float:
    """Band used in the in-band SNR definition: 1/tau (rect), B (LFM), chip rate (Barker)."""
    if c["waveform"] == "lfm":
        return c["bandwidth_hz"]
    if c["waveform"] == "barker13":
        return 13 / c["width_s"]
    return 1 / c["width_s"]


def band_edges(p: dict) -> tuple[float, float]:
    """Nominal band of all components relative to the radar centre (B/2 + 1/tau margins)."""
    lo, hi = [], []
    for c in p["components"]:
        half = (c["bandwidth_hz"] / 2 + 1 / c["width_s"]) if c["waveform"] == "lfm" \
            else nominal_bandwidth(c)
        lo.append(c["f_offset_hz"] - half)
        hi.append(c["f_offset_hz"] + half)
    return min(lo), max(hi)


def waveform(c: dict, rate: float) -> np.ndarray:
    """Complex baseband pulse (peak amplitude 1) with raised-cosine edges (~50 ns rise)."""
    n = max(2, int(round(c["width_s"] * rate)))
    t = np.arange(n) / rate
    env = np.ones(n, np.float32)
    rise = max(1, min(n // 4, int(round(50e-9 * rate))))
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(rise) + 0.5) / rise)
    env[:rise] = ramp
    env[n - rise:] = ramp[::-1]
    if c["waveform"] == "lfm":
        b = c["bandwidth_hz"] * (1 if c.get("up", True) else -1)
        tau = n / rate
        ph = np.pi * b * (t ** 2 / tau - t)
        x = env * np.exp(1j * ph)
    elif c["waveform"] == "barker13":
        chips = BARKER13[np.minimum((np.arange(n) * 13) // n, 12)]
        x = env * chips
    else:
        x = env.astype(np.complex64)
    return np.asarray(x, np.complex64)


def pulse_schedule(p: dict, rng: np.random.Generator, frame_s: float) -> np.ndarray:
    """Start times (s) of all pulses (first component) inside the frame."""
    pri = 1 / p["prf_hz"]
    ratios = np.asarray(p["stagger_ratios"])
    n_max = int(frame_s / (pri * ratios.min() * (1 - p["pri_jitter"]))) + 3
    k0 = int(rng.integers(0, len(ratios)))
    pris = pri * ratios[(k0 + np.arange(n_max)) % len(ratios)]
    if p["pri_jitter"] > 0:
        pris = pris * (1 + rng.uniform(-p["pri_jitter"], p["pri_jitter"], n_max))
    times = p["first_pulse_s"] + np.concatenate([[0], np.cumsum(pris)[:-1]])
    return times[times < frame_s]


def scan_gain_db(p: dict, times: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Antenna gain towards the receiver for each pulse, dB relative to the main-beam peak."""
    scan = p.get("scan")
    if scan is None:
        return np.zeros(len(times))  # fixed / tracking beam; the channel adds any fading
    sl = scan["sidelobe_db"] + rng.normal(0, 2.0, len(times))
    if not p.get("main_beam"):
        return sl
    rate_deg = scan["rpm"] * 6.0
    theta = rate_deg * (times - p["beam_time_s"])
    main = -12.0 * (theta / scan["beamwidth_deg"]) ** 2  # 3 dB at half the beamwidth
    return np.maximum(main, sl)


def column_profile(c: dict, rate: float, f_center: float) -> np.ndarray:
    """Peak power per spectrogram column of one pulse of unit amplitude, relative to the
    per-bin power of unit-variance white noise (both through the 256-point Hann STFT).

    Uses a finer hop (16) than the spectrogram so the maximum is never underestimated.
    """
    from ..spectrogram import NFFT, hann_window

    x = waveform(c, rate)
    n = len(x)
    t = np.arange(n) / rate
    x = x * np.exp(2j * np.pi * (f_center + c["f_offset_hz"]) * t).astype(np.complex64)
    pad = np.concatenate([np.zeros(NFFT, np.complex64), x, np.zeros(NFFT, np.complex64)])
    segs = np.lib.stride_tricks.sliding_window_view(pad, NFFT)[::16]
    w = hann_window()
    spec = np.fft.fft(segs * w, axis=1)
    peak = np.fft.fftshift((np.abs(spec) ** 2).max(axis=0))
    return peak / float(np.sum(w.astype(np.float64) ** 2))

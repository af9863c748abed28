# SPDX-License-Identifier: GPL-3.0-or-later
"""Propagation channels: tapped delay lines with Jakes (sum-of-sinusoids) fading, geometric
multi-scatterer channels, and the evaluation helpers the generators use.

A channel is a set of taps with delays ``tau_l`` and complex gains ``h_l(t)``. The generators
evaluate ``h_l(t)`` only where they need it (once per OFDM symbol, once per radar pulse), which
is what makes 40 ms at 61.44 MS/s cheap; coherence time 0.423 / f_D >= 0.85 ms >> one symbol.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# 36.104 Annex B.2 (confirmed in srsRAN fading.c): delays ns, powers dB.
EPA = ((0, 30, 70, 90, 110, 190, 410), (0, -1, -2, -3, -8, -17.2, -20.8))
EVA = ((0, 30, 150, 310, 370, 710, 1090, 1730, 2510),
       (0, -1.5, -1.4, -3.6, -0.6, -9.1, -7, -12, -16.9))
ETU = ((0, 50, 120, 200, 230, 500, 1600, 2300, 5000), (-1, -1, -1, 0, 0, 0, -3, -5, -7))
# 38.901 Table 7.7.2-3 (TDL-C), normalised delays (x delay spread) and powers dB.
TDL_C = ((0, .2099, .2219, .2329, .2176, .6366, .6448, .6560, .6584, .7935, .8213, .9336,
          1.2285, 1.3083, 2.1704, 2.7105, 4.2589, 4.6003, 5.4902, 5.6077, 6.3065, 6.6374,
          7.0427, 8.6523),
         (-4.4, -1.2, -3.5, -5.2, -2.5, 0, -2.2, -3.9, -7.4, -7.1, -10.7, -11.1, -5.1, -6.8,
          -8.7, -13.2, -13.9, -13.9, -15.8, -17.1, -16, -15.7, -21.6, -22.8))
# 38.901 Tables 7.7.2-1 (TDL-A) and 7.7.2-2 (TDL-B). Recalled values, not re-read against
# the primary document (see docs/SCENES.md); both are NLOS Rayleigh profiles like TDL-C.
TDL_A = ((0, .3819, .4025, .5868, .4610, .5375, .6708, .5750, .7618, 1.5375, 1.8978, 2.2242,
          2.1718, 2.4942, 2.5119, 3.0582, 4.0810, 4.4579, 4.5695, 4.7966, 5.0066, 5.3043,
          9.6586),
         (-13.4, 0, -2.2, -4, -6, -8.2, -9.9, -10.5, -7.5, -15.9, -6.6, -16.7, -12.4, -15.2,
          -10.8, -11.3, -12.7, -16.2, -18.3, -18.9, -16.6, -19.9, -29.7))
TDL_B = ((0, .1072, .2155, .2095, .2870, .2986, .3752, .5055, .3681, .3697, .5700, .5283,
          1.1021, 1.2756, 1.5474, 1.7842, 2.0169, 2.8294, 3.0219, 3.6187, 4.1067, 4.2790,
          4.7834),
         (0, -2.2, -4, -3.2, -9.8, -1.2, -3.4, -5.2, -7.6, -3, -8.9, -9, -4.8, -5.7, -7.5,
          -1.9, -7.6, -12.2, -9.8, -11.4, -14.9, -9.2, -11.3))
TDL_PROFILES = {"TDL-A": TDL_A, "TDL-B": TDL_B, "TDL-C": TDL_C}
LTE_PROFILES = {"EPA": EPA, "EVA": EVA, "ETU": ETU}
PROFILES = ("none", "flat", "EPA", "EVA", "ETU", "TDL-A", "TDL-B", "TDL-C", "geometric")
N_SINUSOIDS = 16
C_LIGHT = 299_792_458.0


@dataclass
class Channel:
    """Taps: delays (s), mean powers (linear, sum 1) and a fading model per tap."""

    delays: np.ndarray
    powers: np.ndarray
    doppler_hz: float
    # Sum-of-sinusoids state per tap: (L, N) angles and phases (Jakes); None = static taps.
    alpha: np.ndarray | None = None
    phi: np.ndarray | None = None
    # Geometric model: one deterministic Doppler and complex gain per path.
    path_doppler: np.ndarray | None = None
    path_gain: np.ndarray | None = None
    rician_k: float = 0.0
    los_phase: float = 0.0
    params: dict = field(default_factory=dict)

    def coeffs(self, t: np.ndarray) -> np.ndarray:
        """Complex tap gains at times ``t`` (s): (len(t), L) complex64, E|h|^2 = powers."""
        t = np.asarray(t, np.float64)
        if self.path_gain is not None:
            ph = 2 * np.pi * t[:, None] * self.path_doppler[None, :]
            return (self.path_gain[None, :] * np.exp(1j * ph)).astype(np.complex64)
        amp = np.sqrt(self.powers)
        if self.alpha is None:
            return np.broadcast_to(amp.astype(np.complex64), (len(t), len(amp))).copy()
        # h_l(t) = sqrt(P_l / N) sum_n exp(j(2 pi f_D cos(alpha_ln) t + phi_ln)) (Jakes SoS)
        n = self.alpha.shape[1]
        fd = 2 * np.pi * self.doppler_hz * np.cos(self.alpha)  # (L, N)
        ph = t[:, None, None] * fd[None] + self.phi[None]
        h = np.exp(1j * ph).sum(axis=2) / np.sqrt(n)
        if self.rician_k > 0:
            k = self.rician_k
            los = np.exp(1j * (2 * np.pi * self.doppler_hz * t + self.los_phase))
            h[:, 0] = (np.sqrt(k) * los + h[:, 0]) / np.sqrt(k + 1)
        return (h * amp[None, :]).astype(np.complex64)

    @property
    def max_delay(self) -> float:
        return float(self.delays.max()) if len(self.delays) else 0.0


def _sos(rng: np.random.Generator, n_taps: int) -> tuple[np.ndarray, np.ndarray]:
    theta = rng.uniform(-np.pi, np.pi, (n_taps, 1))
    n = np.arange(1, N_SINUSOIDS + 1)[None, :]
    alpha = (2 * np.pi * n - np.pi + theta) / N_SINUSOIDS
    phi = rng.uniform(-np.pi, np.pi, (n_taps, N_SINUSOIDS))
    return alpha, phi


def make(rng: np.random.Generator, profile: str, doppler_hz: float = 0.0,
         delay_spread_s: float | None = None, n_scatterers: int | None = None,
         rician_k_db: float | None = None) -> Channel:
    """Build a channel of a named profile (see ``PROFILES``)."""
    params: dict = {"profile": profile, "doppler_hz": float(doppler_hz)}
    if profile == "none":
        return Channel(np.zeros(1), np.ones(1), 0.0, params=params)
    if profile == "flat":
        alpha, phi = _sos(rng, 1)
        k = 0.0 if rician_k_db is None else 10 ** (rician_k_db / 10)
        params["rician_k_db"] = rician_k_db
        return Channel(np.zeros(1), np.ones(1), doppler_hz, alpha, phi, rician_k=k,
                       los_phase=float(rng.uniform(-np.pi, np.pi)), params=params)
    if profile in LTE_PROFILES or profile in TDL_PROFILES:
        if profile in LTE_PROFILES:
            d_ns, p_db = LTE_PROFILES[profile]
            delays = np.asarray(d_ns, float) * 1e-9
        else:
            d_norm, p_db = TDL_PROFILES[profile]
            ds = delay_spread_s if delay_spread_s is not None else float(
                rng.choice([30e-9, 100e-9, 300e-9, 1000e-9]))
            params["delay_spread_s"] = ds
            delays = np.asarray(d_norm, float) * ds
        p = 10 ** (np.asarray(p_db, float) / 10)
        alpha, phi = _sos(rng, len(p))
        return Channel(delays, p / p.sum(), doppler_hz, alpha, phi, params=params)
    if profile == "geometric":
        return _geometric(rng, doppler_hz, n_scatterers, params)
    raise ValueError(f"unknown channel profile {profile!r}; choose from {PROFILES}")


def _geometric(rng, doppler_hz, n_scatterers, params) -> Channel:
    """1-30 static scatterers in a 2 x 2 km area, no direct path, delays <= 20 us; the receiver
    moves so that the largest Doppler equals ``doppler_hz`` (after the [MW-RC] recipe)."""
    n = int(n_scatterers or rng.integers(1, 31))
    params["n_scatterers"] = n
    tx = rng.uniform(-1000, 1000, 2)
    rx = rng.uniform(-1000, 1000, 2)
    sc = rng.uniform(-1000, 1000, (n, 2))
    d1 = np.linalg.norm(sc - tx, axis=1)
    d2 = np.linalg.norm(sc - rx, axis=1)
    excess = (d1 + d2 - np.linalg.norm(rx - tx)) / C_LIGHT
    delays = np.minimum(excess, 20e-6)
    coef = rng.uniform(-2, 2, n) + 1j * rng.uniform(-2, 2, n)
    gain = coef / (d1 * d2)
    heading = rng.uniform(-np.pi, np.pi)
    u = (sc - rx) / d2[:, None]
    path_doppler = doppler_hz * (u @ np.array([np.cos(heading), np.sin(heading)]))
    p = np.abs(gain) ** 2
    gain = gain / np.sqrt(p.sum())
    return Channel(delays, p / p.sum(), doppler_hz, path_doppler=path_doppler,
                   path_gain=gain.astype(np.complex128), params=params)


def draw(rng: np.random.Generator, fixed: dict | None = None) -> Channel:
    """Random channel from the training distribution (urban TDL/EPA..ETU and geometric)."""
    fixed = dict(fixed or {})
    profile = fixed.get("profile") or str(rng.choice(
        PROFILES, p=[0.08, 0.12, 0.1, 0.12, 0.1, 0.1, 0.1, 0.1, 0.18]))
    fd = fixed.get("doppler_hz")
    if fd is None:
        fd = float(rng.choice([0.0, 5.0, 70.0, 300.0, 500.0])) if rng.random() < 0.5 \
            else float(rng.uniform(0, 500))
    k_db = fixed.get("rician_k_db")
    if profile == "flat" and k_db is None and rng.random() < 0.5:
        k_db = float(rng.uniform(0, 12))
    return make(rng, profile, fd, fixed.get("delay_spread_s"), fixed.get("n_scatterers"), k_db)

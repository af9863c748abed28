# SPDX-License-Identifier: GPL-3.0-or-later
"""Noise schedule and DPM-Solver++ (multistep, data prediction) for the latent mask.

Schedule
--------
Discrete-time variance-preserving diffusion with ``T`` steps (default 1000):
``F_t = sqrt(abar_t) F_0 + sqrt(1 - abar_t) eps`` (eq. 7), ``t = 0 .. T-1``.

* ``cosine`` (default, Nichol & Dhariwal 2021): ``abar(t) = f(t) / f(0)``,
  ``f(t) = cos^2(pi/2 (t/T + s) / (1 + s))``, ``s = 0.008``, betas clipped to 0.999;
  ``abar`` is the cumulative product of ``1 - beta``.
* ``linear`` (Ho et al. 2020): betas linear from 1e-4 to 0.02.

All schedule functions compute in float64; tensors are stored as float32.
``alpha_t = sqrt(abar_t)``, ``sigma_t = sqrt(1 - abar_t)``, ``lambda_t = log(alpha_t/sigma_t)``.

Sampler
-------
DPM-Solver++ (Lu et al. 2022) in data prediction: the network's output is turned into a
clean-latent estimate ``m = x0_hat(x_s, s)`` and, with ``h = lambda_t - lambda_s``,
``phi_1 = expm1(-h)``:

* 1st order: ``x_t = (sigma_t/sigma_s) x_s - alpha_t phi_1 m_0``
* 2nd order multistep: ``D_1 = (m_0 - m_1) / r_0``, ``r_0 = h_0 / h``;
  ``x_t = (sigma_t/sigma_s) x_s - alpha_t phi_1 m_0 - 0.5 alpha_t phi_1 D_1``
* 3rd order multistep (``phi_2 = phi_1/h + 1``, ``phi_3 = phi_2/h - 1/2``):
  ``x_t = (sigma_t/sigma_s) x_s - alpha_t phi_1 m_0 + alpha_t phi_2 D_1 - alpha_t phi_3 D_2``.

``K`` model evaluations at timesteps ``t_i = round(t_max (K-i)/K)``, i = 0..K-1 (``t_max``: the
last t with ``abar_t >= 1e-4``; 992 for cosine, 953 for linear), the last update
going to the noise-free end point (``sigma = 0``), where every solver order reduces to
``x = m`` (the last data prediction). Warm-up steps use lower orders (multistep needs history)
and the step before the end is at most 2nd order ("lower order final").

Every update is linear in ``(x, m_0, m_1, m_2)``, so :func:`solver_coefficients` precomputes
``x <- A_i x + B_i0 m_0 + B_i1 m_1 + B_i2 m_2`` per step in float64; the scripted pipeline just
applies them. :func:`reference_sample` is the plain textbook loop (float64, D_1/D_2 written out)
the tests compare against.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

MAX_STEPS = 20
ALPHA_BAR_MIN = 1e-4


def cosine_alpha_bar(T: int, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    """``abar_t`` of the cosine schedule, float64 ``(T,)``."""
    def f(t):
        return math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2

    betas = np.array([min(1 - f(i + 1) / f(i), max_beta) for i in range(T)], dtype=np.float64)
    return np.cumprod(1.0 - betas)


def linear_alpha_bar(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
    """``abar_t`` of the linear schedule, float64 ``(T,)``."""
    betas = np.linspace(beta_start, beta_end, T, dtype=np.float64)
    return np.cumprod(1.0 - betas)


class NoiseSchedule:
    """Discrete VP schedule: float64 arrays for the solver, float32 tensors for training."""

    def __init__(self, kind: str = "cosine", T: int = 1000):
        if kind == "cosine":
            abar = cosine_alpha_bar(T)
        elif kind == "linear":
            abar = linear_alpha_bar(T)
        else:
            raise ValueError(f"unknown schedule {kind!r} (cosine or linear)")
        self.kind = kind
        self.T = T
        self.alpha_bar64 = abar
        self.alpha64 = np.sqrt(abar)
        self.sigma64 = np.sqrt(1.0 - abar)
        self.lambda64 = np.log(self.alpha64) - np.log(self.sigma64)
        self.alpha_bar = torch.from_numpy(abar.astype(np.float32))
        #: First sampler timestep: the last t with abar_t >= 1e-4 (alpha >= 0.01). The cosine
        #: schedule's final steps (beta clipped at 0.999) reach alpha ~ 5e-5, where turning a
        #: noise prediction into a data prediction amplifies float32 rounding 20000x.
        self.t_max = int(np.nonzero(abar >= ALPHA_BAR_MIN)[0][-1])

    def add_noise(self, f0: Tensor, t: Tensor, eps: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Eq. 7. Returns ``(F_t, alpha_t, sigma_t)`` with alpha/sigma shaped ``(B, 1, 1, 1)``."""
        abar = self.alpha_bar.to(f0.device)[t].view(-1, 1, 1, 1)
        alpha, sigma = abar.sqrt(), (1.0 - abar).sqrt()
        return alpha * f0 + sigma * eps, alpha, sigma

    def timesteps(self, steps: int) -> np.ndarray:
        """The K model-evaluation timesteps (int64, decreasing)."""
        if not 1 <= steps <= MAX_STEPS:
            raise ValueError(f"sampler steps must be in 1..{MAX_STEPS}, got {steps}")
        i = np.arange(steps)
        return np.round(self.t_max * (steps - i) / steps).astype(np.int64)


def _orders(steps: int, order: int) -> list[int]:
    if order not in (1, 2, 3):
        raise ValueError(f"solver order must be 1, 2 or 3, got {order}")
    return [1 if i == steps - 1 else min(order, i + 1, steps - i) for i in range(steps)]


def solver_coefficients(
    schedule: NoiseSchedule, steps: int, order: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Precomputed DPM-Solver++ updates (float64).

    Returns ``(t, alpha, sigma, A, B)``: model timesteps ``(K,)``, ``alpha_t, sigma_t`` at them
    (to turn a noise prediction into a data prediction), and the update coefficients
    ``A (K,)``, ``B (K, 3)``: ``x <- A[i] x + B[i] . (m_0, m_1, m_2)``.
    """
    ts = schedule.timesteps(steps)
    alpha = schedule.alpha64[ts]
    sigma = schedule.sigma64[ts]
    lam = schedule.lambda64[ts]
    orders = _orders(steps, order)
    A = np.zeros(steps)
    B = np.zeros((steps, 3))
    for i in range(steps):
        if i == steps - 1:  # to sigma = 0: x = m_0 for every order
            A[i], B[i, 0] = 0.0, 1.0
            continue
        a_t, s_t, s_s = alpha[i + 1], sigma[i + 1], sigma[i]
        h = lam[i + 1] - lam[i]
        phi1 = math.expm1(-h)
        A[i] = s_t / s_s
        k = orders[i]
        if k == 1:
            B[i, 0] = -a_t * phi1
        elif k == 2:
            r0 = (lam[i] - lam[i - 1]) / h
            B[i, 0] = -a_t * phi1 * (1.0 + 0.5 / r0)
            B[i, 1] = 0.5 * a_t * phi1 / r0
        else:
            r0 = (lam[i] - lam[i - 1]) / h
            r1 = (lam[i - 1] - lam[i - 2]) / h
            phi2 = phi1 / h + 1.0
            phi3 = phi2 / h - 0.5
            c0 = a_t * (phi2 * (1.0 + r0 / (r0 + r1)) - phi3 / (r0 + r1))  # weight of D1_0
            c1 = a_t * (-phi2 * r0 / (r0 + r1) + phi3 / (r0 + r1))  # weight of D1_1
            B[i, 0] = -a_t * phi1 + c0 / r0
            B[i, 1] = -c0 / r0 + c1 / r1
            B[i, 2] = -c1 / r1
    return ts, alpha, sigma, A, B


def to_data_prediction(
    out: Tensor, x: Tensor, alpha: float | Tensor, sigma: float | Tensor, prediction: str,
    clip: float,
) -> Tensor:
    """Network output -> clean-latent estimate, clamped to ``[-clip, clip]`` (clip <= 0: none)."""
    m = out if prediction == "x0" else (x - sigma * out) / alpha
    return m.clamp(-clip, clip) if clip > 0 else m


def reference_sample(
    model_fn: Callable[[Tensor, Tensor], Tensor],
    x_T: Tensor,
    schedule: NoiseSchedule,
    steps: int,
    order: int = 2,
    prediction: str = "eps",
    clip: float = 0.0,
) -> Tensor:
    """Plain DPM-Solver++ loop in float64, formulas as in the paper (tests only).

    ``model_fn(x, t)`` returns the network output (noise or x0) for a batch at timestep t.
    """
    ts = schedule.timesteps(steps)
    orders = _orders(steps, order)
    x = x_T.double()
    ms: list[Tensor] = []
    lams: list[float] = []
    for i in range(steps):
        t = int(ts[i])
        a_s, s_s, l_s = schedule.alpha64[t], schedule.sigma64[t], schedule.lambda64[t]
        tt = torch.full((x.shape[0],), float(t), dtype=torch.float32)
        out = model_fn(x.float(), tt).double()
        m = out if prediction == "x0" else (x - s_s * out) / a_s
        if clip > 0:
            m = m.clamp(-clip, clip)
        ms.insert(0, m)
        lams.insert(0, l_s)
        if i == steps - 1:
            return m
        t_next = int(ts[i + 1])
        a_t, s_t = schedule.alpha64[t_next], schedule.sigma64[t_next]
        l_t = schedule.lambda64[t_next]
        h = l_t - l_s
        phi1 = math.expm1(-h)
        k = orders[i]
        x_new = (s_t / s_s) * x - a_t * phi1 * ms[0]
        if k == 2:
            r0 = (lams[0] - lams[1]) / h
            D1 = (ms[0] - ms[1]) / r0
            x_new = x_new - 0.5 * a_t * phi1 * D1
        elif k == 3:
            r0 = (lams[0] - lams[1]) / h
            r1 = (lams[1] - lams[2]) / h
            D1_0 = (ms[0] - ms[1]) / r0
            D1_1 = (ms[1] - ms[2]) / r1
            D1 = D1_0 + r0 / (r0 + r1) * (D1_0 - D1_1)
            D2 = (D1_0 - D1_1) / (r0 + r1)
            phi2 = phi1 / h + 1.0
            phi3 = phi2 / h - 0.5
            x_new = x_new + a_t * phi2 * D1 - a_t * phi3 * D2
        x = x_new
    raise AssertionError("unreachable")


def sample(
    model_fn: Callable[[Tensor, Tensor], Tensor],
    shape: tuple[int, ...],
    schedule: NoiseSchedule,
    steps: int,
    order: int = 2,
    prediction: str = "eps",
    clip: float = 0.0,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    x_T: Tensor | None = None,
) -> Tensor:
    """Fast eager DPM-Solver++ sampling with precomputed coefficients (float32).

    Deterministic given ``generator`` (or an explicit ``x_T``).
    """
    if x_T is None:
        x_T = torch.randn(shape, generator=generator, dtype=torch.float32).to(device)
    ts, alpha, sigma, A, B = solver_coefficients(schedule, steps, order)
    x = x_T
    m0 = m1 = m2 = torch.zeros_like(x)
    for i in range(steps):
        tt = torch.full((x.shape[0],), float(ts[i]), device=x.device)
        out = model_fn(x, tt)
        m = to_data_prediction(out, x, float(alpha[i]), float(sigma[i]), prediction, clip)
        m2, m1, m0 = m1, m0, m
        x = float(A[i]) * x + float(B[i, 0]) * m0 + float(B[i, 1]) * m1 + float(B[i, 2]) * m2
    return x

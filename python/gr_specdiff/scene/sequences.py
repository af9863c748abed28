# SPDX-License-Identifier: GPL-3.0-or-later
"""Synchronisation and scrambling sequences of 3GPP TS 38.211 and TS 36.211."""

from __future__ import annotations

from functools import cache, lru_cache

import numpy as np


def _lfsr(taps: tuple[int, ...], init: list[int], length: int) -> np.ndarray:
    """Binary m-sequence x(i + n) = sum_{t in taps} x(i + t) mod 2, x(0..n-1) = init."""
    n = len(init)
    x = np.zeros(length + n, np.int8)
    x[:n] = init
    for i in range(length):
        x[i + n] = sum(int(x[i + t]) for t in taps) & 1
    return x[:length]


# --- 5G NR (38.211 section 7.4.2) -------------------------------------------------------------

@cache
def _nr_pss_x() -> np.ndarray:
    # x(i+7) = (x(i+4) + x(i)) mod 2, [x(6) .. x(0)] = [1 1 1 0 1 1 0]  (38.211 7.4.2.2.1)
    return _lfsr((4, 0), [0, 1, 1, 0, 1, 1, 1], 127)


@cache
def _nr_sss_x() -> tuple[np.ndarray, np.ndarray]:
    # x0(i+7) = x0(i+4) + x0(i); x1(i+7) = x1(i+1) + x1(i); both [x(6)..x(0)] = 0000001
    init = [1, 0, 0, 0, 0, 0, 0]
    return _lfsr((4, 0), init, 127), _lfsr((1, 0), init, 127)


def nr_pss(n_id2: int) -> np.ndarray:
    """NR PSS d(n) = 1 - 2 x((n + 43 N_ID2) mod 127), n = 0..126 (38.211 7.4.2.2.1)."""
    if n_id2 not in (0, 1, 2):
        raise ValueError(f"N_ID2 must be 0, 1 or 2, got {n_id2}")
    n = np.arange(127)
    return (1 - 2 * _nr_pss_x()[(n + 43 * n_id2) % 127]).astype(np.float32)


def nr_sss(n_id1: int, n_id2: int) -> np.ndarray:
    """NR SSS (38.211 7.4.2.3.1): N_ID1 in 0..335, N_ID2 in 0..2."""
    if not (0 <= n_id1 < 336 and n_id2 in (0, 1, 2)):
        raise ValueError(f"bad NR cell identity N_ID1={n_id1}, N_ID2={n_id2}")
    x0, x1 = _nr_sss_x()
    m0 = 15 * (n_id1 // 112) + 5 * n_id2
    m1 = n_id1 % 112
    n = np.arange(127)
    return ((1 - 2 * x0[(n + m0) % 127]) * (1 - 2 * x1[(n + m1) % 127])).astype(np.float32)


# --- LTE (36.211 section 6.11) ----------------------------------------------------------------

LTE_PSS_ROOTS = (25, 29, 34)  # 36.211 Table 6.11.1.1-1


def lte_pss(n_id2: int) -> np.ndarray:
    """LTE PSS: length-63 Zadoff-Chu, root 25/29/34, centre element punctured (62 values)."""
    if n_id2 not in (0, 1, 2):
        raise ValueError(f"N_ID2 must be 0, 1 or 2, got {n_id2}")
    u = LTE_PSS_ROOTS[n_id2]
    n = np.arange(62)
    arg = np.where(n <= 30, u * n * (n + 1), u * (n + 1) * (n + 2))
    return np.exp(-1j * np.pi * (arg % 126) / 63).astype(np.complex64)


@cache
def _lte_sss_base() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    init = [0, 0, 0, 0, 1]  # x(0..4) = 0 0 0 0 1 for all three (36.211 6.11.2.1)
    s = 1 - 2 * _lfsr((2, 0), init, 31).astype(np.int64)
    c = 1 - 2 * _lfsr((3, 0), init, 31).astype(np.int64)
    z = 1 - 2 * _lfsr((4, 2, 1, 0), init, 31).astype(np.int64)
    return s, c, z


def lte_sss_m(n_id1: int) -> tuple[int, int]:
    """(m0, m1) of 36.211 Table 6.11.2.1-1 from its defining formula."""
    qp = n_id1 // 30
    q = (n_id1 + qp * (qp + 1) // 2) // 30
    mp = n_id1 + q * (q + 1) // 2
    m0 = mp % 31
    return m0, (m0 + mp // 31 + 1) % 31


def lte_sss(n_id1: int, n_id2: int, subframe: int) -> np.ndarray:
    """LTE SSS d(0..61) for subframe 0 or 5 (36.211 6.11.2.1)."""
    if not (0 <= n_id1 < 168 and n_id2 in (0, 1, 2)):
        raise ValueError(f"bad LTE cell identity N_ID1={n_id1}, N_ID2={n_id2}")
    s, c, z = _lte_sss_base()
    m0, m1 = lte_sss_m(n_id1)
    n = np.arange(31)
    s0, s1 = s[(n + m0) % 31], s[(n + m1) % 31]
    c0, c1 = c[(n + n_id2) % 31], c[(n + n_id2 + 3) % 31]
    z1m0, z1m1 = z[(n + m0 % 8) % 31], z[(n + m1 % 8) % 31]
    d = np.empty(62, np.float32)
    if subframe % 10 == 0:
        d[0::2], d[1::2] = s0 * c0, s1 * c1 * z1m0
    else:
        d[0::2], d[1::2] = s1 * c0, s0 * c1 * z1m1
    return d


# --- Pseudo-random (Gold) sequence c(n), 38.211 5.2.1 / 36.211 7.2 ------------------------------

_NC = 1600


@lru_cache(maxsize=8)
def _gold_tables(length: int) -> tuple[np.ndarray, np.ndarray]:
    """x1 part and the GF(2) matrix mapping the 31 bits of c_init to x2(n + Nc)."""
    total = length + _NC
    x1 = np.zeros(total + 31, np.uint8)
    x1[0] = 1
    for i in range(total):
        x1[i + 31] = x1[i + 3] ^ x1[i]
    # x2 is linear in its initial state: propagate the 31 unit vectors at once (bit masks).
    x2 = np.zeros(total + 31, np.int64)
    x2[:31] = 1 << np.arange(31)
    for i in range(total):
        x2[i + 31] = x2[i + 3] ^ x2[i + 2] ^ x2[i + 1] ^ x2[i]
    bits = ((x2[_NC:_NC + length, None] >> np.arange(31)) & 1).astype(np.float32)
    return x1[_NC:_NC + length].copy(), bits  # bits: (length, 31)


def gold(c_init, length: int) -> np.ndarray:
    """c(n), n < length, for one or many c_init values: (len(c_init), length) uint8."""
    c_init = np.atleast_1d(np.asarray(c_init, np.int64))
    x1, m = _gold_tables(int(length))
    init_bits = ((c_init[:, None] >> np.arange(31)) & 1).astype(np.float32)
    x2 = (init_bits @ m.T).astype(np.int64) & 1
    return (x2.astype(np.uint8) ^ x1[None, :])


def qpsk_from_bits(c: np.ndarray) -> np.ndarray:
    """r(m) = ((1 - 2c(2m)) + j(1 - 2c(2m+1))) / sqrt(2) along the last axis."""
    c = c.astype(np.float32)
    return (((1 - 2 * c[..., 0::2]) + 1j * (1 - 2 * c[..., 1::2])) / np.sqrt(2)).astype(
        np.complex64)

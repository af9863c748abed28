# SPDX-License-Identifier: GPL-3.0-or-later
"""LTE downlink carrier (TS 36.211 / 36.104), normal CP, FDD or TDD configurations 0-6."""

from __future__ import annotations

import numpy as np

from . import sequences
from .ofdm import OfdmStretch, draw_traffic, qam

# 36.104 Table 5.6-1.
NRB_TABLE = {1.4: 6, 3: 15, 5: 25, 10: 50, 15: 75, 20: 100}
# 36.211 Table 4.2-2: uplink-downlink configurations 0-6 (D, S, U per subframe).
TDD_CONFIGS = ("DSUUUDSUUU", "DSUUDDSUUD", "DSUDDDSUDD", "DSUUUDDDDD", "DSUUDDDDDD",
               "DSUDDDDDDD", "DSUUUDSUUD")
# DwPTS lengths (symbols) of the special subframe configurations, normal CP (36.211 Table 4.2-1).
DWPTS_SYMBOLS = (3, 9, 10, 11, 12, 3, 9, 10, 11, 6)


def cp_lengths(nfft: int, n_subframes: int) -> np.ndarray:
    """Normal CP: 160 Ts for l = 0 of each slot, 144 Ts otherwise (Ts = 1/30.72 MHz)."""
    if (160 * nfft) % 2048 or (144 * nfft) % 2048:
        raise ValueError(f"FFT size {nfft} gives no integer LTE CP length")
    l_slot = np.arange(n_subframes * 14) % 7
    return np.where(l_slot == 0, 160 * nfft // 2048, 144 * nfft // 2048).astype(np.int64)


def occupied_hz(p: dict) -> float:
    return p["n_rb"] * 12 * 15e3


def channel_hz(p: dict) -> float:
    return p["bw_mhz"] * 1e6


def allowed_bandwidths(max_occupied_hz: float) -> list[float]:
    return [bw for bw, nrb in NRB_TABLE.items() if nrb * 12 * 15e3 <= max_occupied_hz]


def draw(rng: np.random.Generator, max_occupied_hz: float, fixed: dict | None = None) -> dict:
    fixed = dict(fixed or {})
    bws = allowed_bandwidths(max_occupied_hz)
    p: dict = {"scs_khz": 15}
    bw = fixed.get("bw_mhz") or float(rng.choice(bws))
    if bw not in NRB_TABLE:
        raise ValueError(f"LTE bandwidth must be one of {list(NRB_TABLE)} MHz, got {bw}")
    p["bw_mhz"] = float(bw) if bw == 1.4 else int(bw)
    p["n_rb"] = NRB_TABLE[bw]
    p["cell_id"] = int(fixed.get("cell_id", rng.integers(0, 504)))
    p["crs_ports"] = int(fixed.get("crs_ports") or rng.choice([1, 2, 2]))
    p["cfi"] = int(fixed.get("cfi") or rng.choice([1, 2, 3]) + (1 if p["n_rb"] <= 10 else 0))
    p.update(draw_traffic(rng, fixed, pdcch_min=0.1))
    p["duplex"] = fixed.get("duplex") or str(rng.choice(["FDD", "FDD", "TDD"]))
    if p["duplex"] == "TDD":
        p["tdd_config"] = int(fixed.get("tdd_config", rng.integers(0, 7)))
        p["special_config"] = int(fixed.get("special_config", rng.integers(0, 10)))
    p["start_subframe"] = int(fixed.get("start_subframe", rng.integers(0, 10)))
    return p


def _subframe_kinds(p: dict, sfs: np.ndarray) -> np.ndarray:
    if p["duplex"] != "TDD":
        return np.full(len(sfs), "D")
    return np.array(list(TDD_CONFIGS[p["tdd_config"]]))[sfs % 10]


def crs_mask(p: dict, n_sc: int) -> np.ndarray:
    """(14, n_sc) bool: CRS REs of ports 0 (and 1) in one subframe (36.211 6.10.1.2)."""
    vshift = p["cell_id"] % 6
    m = np.zeros((14, n_sc), bool)
    for slot in (0, 1):
        for l_slot, v0 in ((0, 0), (4, 3)):
            for port in range(p["crs_ports"]):
                v = (v0 + 3 * port) % 6
                m[slot * 7 + l_slot, (v + vshift) % 6::6] = True
    return m


def build(rng: np.random.Generator, p: dict, nfft: int, n_subframes: int) -> OfdmStretch:
    n_sc = p["n_rb"] * 12
    c = n_sc // 2  # first subcarrier above DC
    sfs = p["start_subframe"] + np.arange(n_subframes)
    kinds = _subframe_kinds(p, sfs)
    dl = np.zeros((n_subframes, 14), bool)
    dl[kinds == "D"] = True
    if p["duplex"] == "TDD":
        dl[kinds == "S", : DWPTS_SYMBOLS[p["special_config"]]] = True
    grid = np.zeros((n_subframes * 14, n_sc), np.complex64)
    crs = crs_mask(p, n_sc)
    cfi = p["cfi"]
    n_id1, n_id2 = divmod(p["cell_id"], 3)
    # CRS values: 36.211 6.10.1.1 Gold sequence, c_init per slot and symbol, centred on
    # N_RB^max = 110 as the standard does; one matmul for every symbol of the stretch.
    ns = (2 * (sfs[:, None] % 10) + np.array([0, 0, 1, 1])[None, :])
    l_of = np.array([0, 4, 0, 4])[None, :]
    cid = p["cell_id"]
    c_init = (1 << 10) * (7 * (ns + 1) + l_of + 1) * (2 * cid + 1) + 2 * cid + 1
    r = sequences.qpsk_from_bits(sequences.gold(c_init.ravel(), 4 * 110)).reshape(
        n_subframes, 4, 220)
    m_idx = np.arange(2 * p["n_rb"]) + 110 - p["n_rb"]
    crs_syms = (0, 4, 7, 11)
    for s in range(n_subframes):
        if not dl[s].any():
            continue
        base = s * 14
        # Control region (PCFICH/PHICH/PDCCH) filled by REG-ish 1-RB blocks with the load.
        rb_on = rng.random(p["n_rb"]) < p["pdcch_load"]
        ctrl = qam(rng, 4, (cfi, n_sc)) * np.repeat(rb_on, 12)[None, :]
        grid[base:base + cfi] = ctrl
        # PDSCH on scheduled PRBs.
        load = p["pdsch_load"]
        n_dl = int(dl[s].sum())
        if load > 0 and rng.random() < min(1.0, 0.3 + load) and n_dl > cfi:
            frac = 1.0 if load >= 1 else min(1.0, load * rng.uniform(0.6, 1.4))
            want = max(1, int(round(frac * p["n_rb"])))
            start = int(rng.integers(0, p["n_rb"] - want + 1))
            order = int(rng.choice(p["qam_orders"]))
            grid[base + cfi:base + n_dl, start * 12:(start + want) * 12] = qam(
                rng, order, (n_dl - cfi, want * 12))
        # CRS on every downlink symbol that carries them (both ports' REs).
        for j, l in enumerate(crs_syms):
            if not dl[s, l]:
                continue
            row = grid[base + l]
            row[crs[l]] = 0
            vals = r[s, j, m_idx]
            for port in range(p["crs_ports"]):
                v = ((0 if l % 7 == 0 else 3) + 3 * port) % 6
                k = np.arange((v + p["cell_id"] % 6) % 6, n_sc, 6)
                row[k] = vals[: len(k)]
        sf = int(sfs[s] % 10)
        # PBCH: subframe 0, slot 1, symbols 0-3, central 72 subcarriers (CRS REs kept).
        if sf == 0 and dl[s, 7:11].all():
            blk = grid[base + 7:base + 11, c - 36:c + 36]
            keep = crs[7:11, c - 36:c + 36]
            seed = p["cell_id"] * 977 + int(sfs[s] // 10) % 4
            blk[~keep] = qam(np.random.default_rng(seed), 4, int((~keep).sum()))
        # PSS / SSS (36.211 6.11): FDD last two symbols of slots 0 and 10;
        # TDD SSS in the last symbol of slots 1 and 11, PSS in the 3rd symbol of subframes 1, 6.
        ss = None
        if p["duplex"] == "FDD" and sf in (0, 5):
            ss = ((base + 5, "sss"), (base + 6, "pss"))
        elif p["duplex"] == "TDD" and sf in (0, 5):
            ss = ((base + 13, "sss"),)
        elif p["duplex"] == "TDD" and sf in (1, 6) and dl[s, 2]:
            ss = ((base + 2, "pss"),)
        for row_i, what in ss or ():
            grid[row_i, c - 36:c + 36] = 0
            seq = sequences.lte_pss(n_id2) if what == "pss" else sequences.lte_sss(
                n_id1, n_id2, 0 if sf < 5 else 5)
            grid[row_i, c - 31:c + 31] = seq
    grid[~dl.reshape(-1)] = 0
    sc = np.arange(n_sc)
    bins = np.where(sc < c, sc - c, sc - c + 1).astype(np.int64)  # DC subcarrier unused
    return OfdmStretch(grid=grid, cp=cp_lengths(nfft, n_subframes), nfft=nfft, bins=bins,
                       sc_freqs=bins * 15e3)


def band_edges(p: dict) -> tuple[float, float]:
    """Transmission band relative to the carrier centre: N_RB*12 subcarriers plus the DC one."""
    half = p["n_rb"] * 6 * 15e3
    return -half - 7.5e3, half + 7.5e3


def subframe_samples(rate: float) -> int:
    return int(round(rate * 1e-3))



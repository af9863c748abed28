# SPDX-License-Identifier: GPL-3.0-or-later
"""5G NR FR1 downlink carrier (TS 38.211 / 38.213 / 38.101-1), normal CP, 15 or 30 kHz SCS."""

from __future__ import annotations

import numpy as np

from . import sequences
from .ofdm import OfdmStretch, draw_traffic, qam

# N_RB per channel bandwidth (38.101-1 Table 5.3.2-1; 35/45/70 MHz as in OAI tables_5_3_2).
NRB_TABLE = {
    15: {5: 25, 10: 52, 15: 79, 20: 106, 25: 133, 30: 160, 35: 188, 40: 216, 45: 242, 50: 270},
    30: {5: 11, 10: 24, 15: 38, 20: 51, 25: 65, 30: 78, 35: 92, 40: 106, 45: 119, 50: 133,
         60: 162, 70: 189, 80: 217, 90: 245, 100: 273},
}
SSB_PERIODS_MS = (5, 10, 20, 40, 80, 160)
# SSB first symbols within a half frame (38.213 4.1): (base symbols, step, n for L=4, L=8).
SSB_CASES = {"A": ((2, 8), 14, 2, 4), "B": ((4, 8, 16, 20), 28, 1, 2), "C": ((2, 8), 14, 2, 4)}
# TDD DL/UL slot patterns seen in deployments (D = downlink, S = special, U = uplink).
TDD_PATTERNS = {15: ("DDDSU", "DDSUU", "DDDDDDDSUU"),
                30: ("DDDSU", "DDDDDDDSUU", "DDDSUDDSUU", "DSUUU")}


def n_rb(scs_khz: int, bw_mhz: int) -> int:
    try:
        return NRB_TABLE[scs_khz][bw_mhz]
    except KeyError:
        raise ValueError(f"no NR FR1 carrier with SCS {scs_khz} kHz and {bw_mhz} MHz") from None


def cp_lengths(nfft: int, mu: int, n_slots: int) -> np.ndarray:
    """CP of every symbol of ``n_slots`` slots at FFT size ``nfft`` (38.211 5.3.1).

    N_CP = 144 k 2^-mu Tc (= 9 nfft / 128), plus 16 k Tc (= nfft 2^mu / 128) at l = 0 and
    l = 7 * 2^mu of each subframe, i.e. once per half-subframe.
    """
    if (9 * nfft) % 128 or (nfft << mu) % 128:
        raise ValueError(f"FFT size {nfft} gives no integer NR CP length")
    l_sf = (np.arange(n_slots * 14) % (14 << mu))
    long = (l_sf % (7 << mu)) == 0
    return (9 * nfft // 128 + long * ((nfft << mu) // 128)).astype(np.int64)


def occupied_hz(p: dict) -> float:
    return p["n_rb"] * 12 * p["scs_khz"] * 1e3


def channel_hz(p: dict) -> float:
    return p["bw_mhz"] * 1e6


def allowed_bandwidths(scs_khz: int, max_occupied_hz: float) -> list[int]:
    # SSB needs 20 RBs, so carriers narrower than that (5 MHz at 30 kHz) are left out.
    return [bw for bw, nrb in NRB_TABLE[scs_khz].items()
            if nrb >= 20 and nrb * 12 * scs_khz * 1e3 <= max_occupied_hz]


def draw(rng: np.random.Generator, max_occupied_hz: float, fixed: dict | None = None) -> dict:
    """Draw every parameter of one NR carrier; ``fixed`` overrides any of them."""
    fixed = dict(fixed or {})
    p: dict = {}
    scs = fixed.get("scs_khz") or int(rng.choice([15, 30]))
    bws = allowed_bandwidths(scs, max_occupied_hz)
    if not bws:
        raise ValueError(f"no NR bandwidth at {scs} kHz fits {max_occupied_hz / 1e6:.1f} MHz")
    p["scs_khz"] = scs
    p["bw_mhz"] = int(fixed.get("bw_mhz") or rng.choice(bws))
    p["n_rb"] = n_rb(scs, p["bw_mhz"])
    p["n_id"] = int(fixed.get("n_id", rng.integers(0, 1008)))
    p["ssb_case"] = fixed.get("ssb_case") or ("A" if scs == 15 else str(rng.choice(["B", "C"])))
    p["l_max"] = int(fixed.get("l_max") or rng.choice([4, 8]))
    bitmap = rng.random(p["l_max"]) < 0.7
    bitmap[rng.integers(0, p["l_max"])] = True
    if rng.random() < 0.5:
        bitmap[:] = True
    p["ssb_bitmap"] = fixed.get("ssb_bitmap") or [int(b) for b in bitmap]
    # 20 ms dominates OTA (initial-access default); others with lower weight.
    p["ssb_period_ms"] = int(fixed.get("ssb_period_ms") or rng.choice(
        SSB_PERIODS_MS, p=[0.1, 0.15, 0.5, 0.1, 0.1, 0.05]))
    # Sync raster simplified: SSB on a random RB offset inside the carrier (k_SSB = 0).
    p["ssb_rb_offset"] = int(fixed.get("ssb_rb_offset", rng.integers(0, p["n_rb"] - 20 + 1)))
    p["ssb_boost_db"] = float(fixed.get("ssb_boost_db", rng.choice([0.0, 0.0, 3.0])))
    p["coreset_symbols"] = int(fixed.get("coreset_symbols") or rng.choice([1, 2, 2, 3]))
    n6 = p["n_rb"] // 6
    cs_n6 = int(rng.integers(max(1, min(4, n6)), n6 + 1))
    p["coreset_rb_start"] = int(fixed.get("coreset_rb_start", 6 * rng.integers(0, n6 - cs_n6 + 1)))
    p["coreset_n_rb"] = int(fixed.get("coreset_n_rb", 6 * cs_n6))
    p.update(draw_traffic(rng, fixed, pdcch_min=0.05))
    p["duplex"] = fixed.get("duplex") or str(rng.choice(["FDD", "TDD"]))
    if p["duplex"] == "TDD":
        p["tdd_pattern"] = fixed.get("tdd_pattern") or str(rng.choice(TDD_PATTERNS[scs]))
        p["special_dl_symbols"] = int(fixed.get("special_dl_symbols") or rng.choice([6, 10, 12]))
    else:
        p["tdd_pattern"] = "D"
        p["special_dl_symbols"] = 14
    # Frame timing: slot index (mod the SSB period) at which the generated stretch begins.
    slots_per_ms = scs // 15
    p["start_slot"] = int(fixed.get("start_slot", rng.integers(0, 160 * slots_per_ms)))
    return p


def _dl_symbol_mask(p: dict, slots: np.ndarray) -> np.ndarray:
    """(n_slots, 14) bool: which symbols the gNB may transmit in."""
    pat = p["tdd_pattern"]
    kinds = np.array(list(pat))[slots % len(pat)]
    mask = np.zeros((len(slots), 14), bool)
    mask[kinds == "D"] = True
    mask[kinds == "S", : p["special_dl_symbols"]] = True
    return mask


def ssb_symbols(p: dict) -> np.ndarray:
    """First symbols (within a half frame) of the transmitted SSBs, and their SSB index."""
    base, step, n4, n8 = SSB_CASES[p["ssb_case"]]
    n = n4 if p["l_max"] == 4 else n8
    firsts = np.array([b + step * k for k in range(n) for b in base])
    firsts = np.sort(firsts)[: p["l_max"]]
    return firsts


def _ssb_block(p: dict, i_ssb: int, half_frame: int) -> np.ndarray:
    """The 4 x 240 SS/PBCH block resource grid (38.211 Table 7.4.3.1-1)."""
    n_id = p["n_id"]
    n_id1, n_id2 = divmod(n_id, 3)
    blk = np.zeros((4, 240), np.complex64)
    blk[0, 56:183] = sequences.nr_pss(n_id2)
    blk[2, 56:183] = sequences.nr_sss(n_id1, n_id2)
    v = n_id % 4
    pbch = np.zeros((4, 240), bool)
    pbch[1, :] = pbch[3, :] = True
    pbch[2, :48] = pbch[2, 192:] = True
    dmrs = np.zeros((4, 240), bool)
    dmrs[1:4, v::4] = True
    dmrs &= pbch
    # PBCH DM-RS (38.211 7.4.1.4.1): i_SSB_bar = i_SSB + 4 n_hf for L_max = 4, else i_SSB mod 8.
    i_bar = (i_ssb + 4 * (half_frame % 2)) if p["l_max"] == 4 else i_ssb % 8
    c_init = (1 << 11) * (i_bar + 1) * (n_id // 4 + 1) + (1 << 6) * (i_bar + 1) + v
    blk[dmrs] = sequences.qpsk_from_bits(sequences.gold(c_init, 288)[0])
    # PBCH payload: scrambled coded bits are indistinguishable from random QPSK.
    data = pbch & ~dmrs
    seed = (n_id * 1009 + i_ssb) & 0xFFFFFFFF
    blk[data] = qam(np.random.default_rng(seed), 4, int(data.sum()))
    return blk


def build(rng: np.random.Generator, p: dict, nfft: int, n_slots: int) -> OfdmStretch:
    """Resource grid of ``n_slots`` slots from ``p['start_slot']``."""
    scs = p["scs_khz"]
    mu = 0 if scs == 15 else 1
    n_sc = p["n_rb"] * 12
    slots = p["start_slot"] + np.arange(n_slots)
    grid = np.zeros((n_slots * 14, n_sc), np.complex64)
    dl = _dl_symbol_mask(p, slots)
    # --- CORESET / PDCCH: first symbols of every slot, 6-RB CCE groups active by load.
    d = p["coreset_symbols"]
    rb0, nrb_cs = p["coreset_rb_start"], p["coreset_n_rb"]
    active_cce = rng.random((n_slots, nrb_cs // 6)) < p["pdcch_load"]
    active_cce &= dl[:, :d].all(axis=1)[:, None]
    cs_mask = np.repeat(active_cce, 72, axis=1)  # (n_slots, coreset subcarriers)
    for s in np.nonzero(active_cce.any(axis=1))[0]:
        region = grid[s * 14:s * 14 + d, rb0 * 12:(rb0 + nrb_cs) * 12]
        vals = qam(rng, 4, region.shape)
        region[:] = np.where(cs_mask[s][None, :], vals, 0)
    # --- PDSCH: per slot, scheduled with a probability, on 1-3 PRB groups, DM-RS comb.
    load = p["pdsch_load"]
    qams = p["qam_orders"]
    for s in range(n_slots):
        n_dl = int(dl[s].sum())
        if load <= 0 or n_dl <= d + 1 or rng.random() > min(1.0, 0.3 + load):
            continue
        # load 1 = every PRB of every slot (like test model TM3.1); else a varying share.
        frac = 1.0 if load >= 1 else min(1.0, load * rng.uniform(0.6, 1.4))
        n_alloc = max(1, int(round(frac * p["n_rb"])))
        groups = int(rng.integers(1, 4)) if n_alloc < p["n_rb"] else 1
        bounds = np.sort(rng.choice(np.arange(1, p["n_rb"]), groups - 1, replace=False)) \
            if groups > 1 else np.array([], int)
        edges = np.concatenate([[0], bounds, [p["n_rb"]]])
        share = np.diff(np.concatenate([[0], np.sort(rng.random(groups - 1)), [1]]))
        order = int(rng.choice(qams))
        l0, l1 = s * 14 + d, s * 14 + n_dl
        for g in range(groups):
            span = edges[g + 1] - edges[g]
            want = max(1, min(span, int(round(share[g] * n_alloc))))
            start = int(edges[g] + rng.integers(0, span - want + 1))
            sc0, sc1 = start * 12, (start + want) * 12
            grid[l0:l1, sc0:sc1] = qam(rng, order, (l1 - l0, sc1 - sc0))
            # DM-RS type 1 at l = 2 (type A), CDM group 0 only: odd REs of that symbol empty.
            ld = s * 14 + max(2, d)
            if ld < l1:
                grid[ld, sc0:sc1] = 0
                grid[ld, sc0:sc1:2] = qam(rng, 4, (sc1 - sc0) // 2)
    # --- SS/PBCH bursts: in half frames hf with hf mod (period / 5) == 0.
    slots_per_hf = 5 << mu
    firsts = ssb_symbols(p)
    boost = np.float32(10 ** (p["ssb_boost_db"] / 20))
    k0 = p["ssb_rb_offset"] * 12
    sym_abs0 = p["start_slot"] * 14
    hf_first = p["start_slot"] // slots_per_hf
    hf_last = (p["start_slot"] + n_slots - 1) // slots_per_hf
    for hf in range(hf_first, hf_last + 1):
        if hf % (p["ssb_period_ms"] // 5):
            continue
        for i_ssb, f in enumerate(firsts):
            if not p["ssb_bitmap"][i_ssb]:
                continue
            l_abs = hf * slots_per_hf * 14 + int(f)
            l_rel = l_abs - sym_abs0
            if l_rel < 0 or l_rel + 4 > grid.shape[0]:
                continue
            if not dl.reshape(-1)[l_rel:l_rel + 4].all():
                continue
            grid[l_rel:l_rel + 4, k0:k0 + 240] = boost * _ssb_block(p, i_ssb, hf)
    grid[~dl.reshape(-1)] = 0
    sc = np.arange(n_sc)
    bins = (sc - n_sc // 2).astype(np.int64)
    return OfdmStretch(grid=grid, cp=cp_lengths(nfft, mu, n_slots), nfft=nfft, bins=bins,
                       sc_freqs=bins * scs * 1e3)


def band_edges(p: dict) -> tuple[float, float]:
    """Occupied band [lo, hi) relative to the carrier centre (subcarrier n_sc/2 at 0 Hz)."""
    scs = p["scs_khz"] * 1e3
    n_sc = p["n_rb"] * 12
    return -(n_sc // 2) * scs - scs / 2, (n_sc - n_sc // 2 - 1) * scs + scs / 2


def slot_samples(p: dict, rate: float) -> int:
    return int(round(rate * 1e-3 / (p["scs_khz"] // 15)))

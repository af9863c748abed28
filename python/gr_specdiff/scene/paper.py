# SPDX-License-Identifier: GPL-3.0-or-later
"""``preset="paper"``: the dataset recipe the seed paper's authors actually used
(WAVEFORMS.md section 8), so our model can be compared with their numbers on that kind of data.

- Frame = 3 radar PRIs of a 1 us rectangular pulse at PRF fs / ceil(fs / 1050) (175,545 samples
  = 2.86 ms at 61.44 MS/s); comm signals generated for the same span.
- Scenes: radar + NR at DC, radar + LTE at DC, radar + NR + LTE side by side.
- NR: SCS 15/30 kHz, 10-50 MHz, SSB every 20 ms (Case A / B), CORESET0 full band; LTE FDD
  5/15/20 MHz. Channel: 1-30 static scatterers, Doppler from {0, 5, 70, 500}/2 Hz.
- AWGN at a whole-band SNR in {-10, 0, 10, 20, 30} dB measured over the radar + comm sum, or
  none (the noise-free copy).
- Labels from nominal parameters: NR/LTE fill all rows over their channel bandwidth, radar fills
  entire rows wherever a radar sample falls; priority radar > NR > LTE > noise.

Features still come from our front end (``compute_features``), not the paper's parula image:
the model consumes features, and the colour map carries no information (documented choice).
"""

from __future__ import annotations

import math

import numpy as np

from .. import LTE, NR, RADAR
from ..spectrogram import N_COLS, N_ROWS, geometry
from . import nr

PAPER_SNRS = (-10.0, 0.0, 10.0, 20.0, 30.0)
SCENE_TYPES = ("radar+NR", "radar+LTE", "radar+NR+LTE")
NR_BWS = (10, 15, 20, 25, 30, 40, 50)
LTE_BWS = (5, 15, 20)


def frame_samples(rate: float) -> int:
    return 3 * math.ceil(rate / 1050)


def frame_seconds(rate: float) -> float:
    """A paper-protocol frame's length: 3 radar PRIs, 2.857 ms (datasets record 0: "3 PRIs")."""
    return frame_samples(rate) / float(rate)


def generate_paper(rng: np.random.Generator, sample_rate: float = 61.44e6, spec=None,
                   whole_snr_db="draw", noise_rng: np.random.Generator | None = None):
    """One paper-protocol scene. ``whole_snr_db``: a value, None (noise-free) or "draw" (half
    the draws noise-free, the rest from PAPER_SNRS, as in the authors' 50/50 dataset)."""
    from .scene import LTESpec, NRSpec, RadarSpec, SceneSpec, generate

    rate = float(sample_rate)
    n = frame_samples(rate)
    pri_s = math.ceil(rate / 1050) / rate
    dopp = float(rng.choice([0.0, 5.0, 70.0, 500.0])) / 2
    kind = str(rng.choice(SCENE_TYPES)) if spec is None else _spec_type(spec)
    geo_ch = {"profile": "geometric", "doppler_hz": dopp}
    scs = int(rng.choice([15, 30]))
    nr_bw = int(rng.choice([b for b in NR_BWS
                            if nr.NRB_TABLE[scs][b] * 12 * scs * 1e3 < 0.9 * rate]))
    lte_bw = int(rng.choice(LTE_BWS))
    nr_p = {"scs_khz": scs, "bw_mhz": nr_bw, "ssb_period_ms": 20, "duplex": "FDD",
            "ssb_case": "A" if scs == 15 else "B", "coreset_rb_start": 0,
            "coreset_n_rb": 6 * (nr.NRB_TABLE[scs][nr_bw] // 6),
            "qam_orders": [4], "pdcch_load": 1.0,
            "pdsch_load": float(rng.uniform(0.2, 0.7))}
    lte_p = {"bw_mhz": lte_bw, "duplex": "FDD", "crs_ports": 1,
             "pdsch_load": float(rng.uniform(0.2, 1.0))}
    # Relative levels are not in the recipe: comm in-band 20 dB, radar peak 10-30 dB (assumed).
    comm_level, radar_level = 20.0, float(rng.uniform(10, 30))
    s = SceneSpec(impairments={"device": "ideal"}, noise=False)
    if kind == "radar+NR":
        s.nr.append(NRSpec(snr_db=comm_level, f_center=0.0, channel=geo_ch, params=nr_p))
    elif kind == "radar+LTE":
        s.lte.append(LTESpec(snr_db=comm_level, f_center=0.0, channel=geo_ch, params=lte_p))
    else:
        while nr_bw + lte_bw > 0.95 * rate / 1e6:
            nr_bw = int(rng.choice([b for b in NR_BWS if b < nr_bw] or [10]))
            nr_p.update(bw_mhz=nr_bw, coreset_n_rb=6 * (nr.NRB_TABLE[scs][nr_bw] // 6))
        total = (nr_bw + lte_bw) * 1e6
        f_nr = -total / 2 + nr_bw * 1e6 / 2
        f_lte = f_nr + (nr_bw + lte_bw) * 1e6 / 2
        s.nr.append(NRSpec(snr_db=comm_level, f_center=round(f_nr / 30e3) * 30e3,
                           channel=geo_ch, params=nr_p))
        s.lte.append(LTESpec(snr_db=comm_level, f_center=round(f_lte / 15e3) * 15e3,
                             channel=geo_ch, params=lte_p))
    s.radar.append(RadarSpec(snr_db=radar_level, f_center=0.0, channel=geo_ch, params={
        "kind": "rect", "width_s": 1e-6, "prf_hz": 1 / pri_s, "pri_jitter": 0.0,
        "stagger_ratios": [1.0], "scan": None, "first_pulse_s": 0.0, "coherent": True}))
    scene = generate(rng, rate, n / rate, s, "realistic")
    if isinstance(whole_snr_db, str):
        whole_snr_db = None if rng.random() < 0.5 else float(rng.choice(PAPER_SNRS))
    iq = scene.iq
    if whole_snr_db is not None:
        nr_ = noise_rng if noise_rng is not None else rng
        p_sum = float(np.mean(np.abs(iq) ** 2))
        var = p_sum / 10 ** (whole_snr_db / 10)
        noise = nr_.standard_normal(2 * len(iq), dtype=np.float32).view(np.complex64)
        iq = (iq + noise * np.float32(math.sqrt(var / 2))).astype(np.complex64)
    else:
        # compute_features rejects an all-zero frame only; keep the clean sum as is.
        iq = iq.copy()
    masks, cmap = _nominal_labels(scene, rate)
    meta = dict(scene.meta, preset="paper", paper_scene=kind, noise_free=whole_snr_db is None,
                whole_snr_db=whole_snr_db,
                snr_db=whole_snr_db if whole_snr_db is not None else 100.0,
                snr_definition="whole band: P(radar + comm) / P(noise); noise-free = 100")
    scene.iq, scene.masks, scene.class_map, scene.meta = iq, masks, cmap, meta
    return scene


def _spec_type(spec) -> str:
    if spec.nr and spec.lte:
        return "radar+NR+LTE"
    return "radar+NR" if spec.nr else "radar+LTE"


def _nominal_labels(scene, rate):
    geo = geometry(len(scene.iq), rate)
    masks = np.zeros((4, N_ROWS, N_COLS), bool)
    cmap = np.zeros((N_ROWS, N_COLS), np.uint8)
    cols = np.arange(N_COLS)
    for cls, kind in ((LTE, "LTE"), (NR, "NR")):
        for t in scene.signals:
            if t.kind != kind:
                continue
            half = t.params["bw_mhz"] * 1e6 / 2
            fc = t.params["f_center"]
            c0, c1 = geo.freq_to_col(fc - half), geo.freq_to_col(fc + half)
            sel = (cols >= c0) & (cols <= c1)
            masks[cls][:, sel] = True
            cmap[:, sel] = cls
    for t in scene.signals:
        if t.kind != "radar":
            continue
        w = int(round(t.params["components"][0]["width_s"] * rate))
        for tp in t.params["pulse_times_s"]:
            s0 = int(round(tp * rate))
            r0, r1 = geo.sample_to_row(np.clip([s0, s0 + w - 1], 0, len(scene.iq) - 1))
            masks[RADAR][r0:r1 + 1, :] = True
            cmap[r0:r1 + 1, :] = RADAR
    masks[0] = ~masks[1:].any(axis=0)
    return masks, cmap


__all__ = ["PAPER_SNRS", "SCENE_TYPES", "frame_samples", "generate_paper"]

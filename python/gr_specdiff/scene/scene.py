# SPDX-License-Identifier: GPL-3.0-or-later
"""Scene composition: NR / LTE / radar signals through channels, thermal noise at a defined
per-signal in-band SNR, receiver impairments, and the pixel labels of the result.

SNR definition (docs/SCENES.md): complex noise of unit variance at the output rate, so
N0 = 1 / fs. A signal's in-band SNR is P_active / (N0 * B): P_active is its mean power over the
samples where it transmits (OFDM symbols carrying any RE; radar: the strongest pulse's peak
power at the mean channel gain), B is N_RB*12*SCS for NR/LTE and the nominal radar bandwidth
(1/tau rect, chirp B for LFM, chip rate for Barker).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import __version__
from ..spectrogram import N_COLS, geometry
from . import channel as chmod
from . import impairments as impmod
from . import labels, lte, nr, radar
from .ofdm import freq_response, modulate

GENERATOR_VERSION = 2  # 2: radar labels per pulse level and column profile
SUPPORTED_RATES = (61.44e6, 30.72e6, 20e6, 19.2e6, 15.36e6)
PRESETS = ("realistic", "paper")
DEFAULT_CENTER_FREQ = 2.8e9
_NATIVE_UNIT = 3.84e6  # 128 x 30 kHz: every NR/LTE CP is an integer number of samples


@dataclass
class SignalSpec:
    """One signal of a fixed scene; every field left ``None`` is drawn at random."""

    snr_db: float | None = None
    f_center: float | None = None  # Hz relative to the tuned centre
    channel: dict | None = None  # fixed channel parameters (profile, doppler_hz, ...)
    params: dict = field(default_factory=dict)  # fixed waveform parameters


class NRSpec(SignalSpec):
    kind = "NR"


class LTESpec(SignalSpec):
    kind = "LTE"


class RadarSpec(SignalSpec):
    kind = "radar"


@dataclass
class SceneSpec:
    nr: list = field(default_factory=list)
    lte: list = field(default_factory=list)
    radar: list = field(default_factory=list)
    impairments: dict | None = None  # fixed impairment parameters, e.g. {"device": "ideal"}
    noise: bool = True
    center_freq: float = DEFAULT_CENTER_FREQ


@dataclass
class SignalTruth:
    kind: str
    f_lower: float
    f_upper: float
    sample_start: int
    sample_count: int
    snr_db: float
    params: dict

    def to_dict(self) -> dict:
        return {"kind": self.kind, "f_lower": self.f_lower, "f_upper": self.f_upper,
                "sample_start": self.sample_start, "sample_count": self.sample_count,
                "snr_db": self.snr_db, "params": self.params}


@dataclass
class Scene:
    iq: np.ndarray
    sample_rate: float
    signals: list
    masks: np.ndarray
    class_map: np.ndarray
    meta: dict

    def features(self) -> np.ndarray:
        from ..spectrogram import compute_features

        return compute_features(self.iq, self.sample_rate, workers=1).features


def native_rate(rate: float) -> float:
    """Rate at which NR/LTE are synthesised: ``rate`` when every FFT/CP is integer there."""
    k = rate / _NATIVE_UNIT
    if abs(k - round(k)) < 1e-9:
        return float(rate)
    return math.ceil(k) * _NATIVE_UNIT


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    return v


def random_spec(rng: np.random.Generator, rate: float) -> SceneSpec:
    """A scene from the training distribution: 0-2 of each type, rarely nothing at all."""
    counts = rng.choice([0, 1, 2], size=3, p=[0.4, 0.45, 0.15])
    if counts.sum() == 0 and rng.random() < 0.9:
        counts[rng.integers(0, 3)] = 1
    spec = SceneSpec(nr=[NRSpec() for _ in range(counts[0])],
                     lte=[LTESpec() for _ in range(counts[1])],
                     radar=[RadarSpec() for _ in range(counts[2])])
    return spec


# ---------------------------------------------------------------------------------------------
# Frequency planning

def _place(rng, half_occ_lo, half_occ_hi, ch_lo, ch_hi, rate, taken, grid_hz, f_fixed,
           allow_edge=True):
    """Pick a carrier centre so that its channel band avoids ``taken`` ones."""
    if f_fixed is not None:
        return float(f_fixed)
    for _ in range(60):
        occ = half_occ_hi - half_occ_lo
        if allow_edge and rng.random() < 0.2 and occ < rate:
            # Partly outside the band: keep at least 40 % of the occupied band inside.
            lo_lim = -rate / 2 - half_occ_lo - 0.6 * occ
            hi_lim = rate / 2 - half_occ_hi + 0.6 * occ
        else:
            lo_lim = -0.49 * rate - half_occ_lo
            hi_lim = 0.49 * rate - half_occ_hi
        if hi_lim < lo_lim:
            return None
        f = round(rng.uniform(lo_lim, hi_lim) / grid_hz) * grid_hz
        lo, hi = f + ch_lo, f + ch_hi
        if all(hi <= a or lo >= b for a, b in taken):
            return float(f)
    return None


# ---------------------------------------------------------------------------------------------
# Communication carriers

def _ofdm_signal(rng, kind, p, ch, f_c, snr_db, rate, nat, n_nat, n_out, fr_resp):
    """Time signal at the native rate, activity labels and power bookkeeping of one carrier."""
    if kind == "NR":
        unit = nr.slot_samples(p, nat)
    else:
        unit = lte.subframe_samples(nat)
    offset = int(rng.integers(0, unit))
    n_units = -(-(offset + n_nat) // unit)
    scs = p["scs_khz"] * 1e3
    nfft = int(round(nat / scs))
    st = nr.build(rng, p, nfft, n_units) if kind == "NR" else lte.build(rng, p, nfft, n_units)
    active = st.grid != 0
    sym_start = st.sym_start - offset
    t0 = sym_start / nat
    t1 = (sym_start + st.sym_len) / nat
    bin_shift = int(round(f_c / scs))
    abs_f = f_c + st.sc_freqs
    # Channel (and analogue front-end response) per symbol in the frequency domain.
    t_mid = (t0 + t1) / 2
    h = freq_response(ch.delays, ch.coeffs(t_mid), st.sc_freqs)
    h *= fr_resp(abs_f)[None, :]
    st.grid *= h
    x = modulate(st, bin_shift)[offset:offset + n_nat]
    # Scale to the in-band SNR over the transmitting samples (energy of cut-off REs counted).
    # In-band SNR from the energy per active resource element (EPRE): the carrier's PSD where it
    # transmits, i.e. the power it would have fully loaded, n_sc * EPRE / N^2 (scipy's ifft
    # carries 1/N). A lightly loaded carrier then has the same per-pixel contrast as a full one.
    s0 = np.clip(sym_start, 0, n_nat)
    s1 = np.clip(sym_start + st.sym_len, 0, n_nat)
    vis = (s1 - s0) * active.any(axis=1)
    act_vis = active & (vis > 0)[:, None]
    n_act = int(act_vis.sum())
    occ = p["n_rb"] * 12 * scs
    target = 10 ** (snr_db / 10) * occ / rate
    if n_act:
        g = st.grid[act_vis]
        epre = float(np.vdot(g, g).real) / n_act
        x *= np.float32(math.sqrt(target / (active.shape[1] * epre / nfft / nfft)))
    on_mask_any = vis > 0
    first_on = int(s0[on_mask_any].min()) if on_mask_any.any() else 0
    last_on = int(s1[on_mask_any].max()) if on_mask_any.any() else 0
    return x, {"active": active, "t0": t0, "t1": t1, "freqs": abs_f, "occ": occ,
               "on": (first_on / nat, last_on / nat), "offset_s": offset / nat}


# ---------------------------------------------------------------------------------------------
# Radar

def _radar_signal(rng, p, ch, f_c, snr_db, rate, n_out, frame_s, fr_resp):
    """Radar pulse train at the output rate plus label intervals and column profiles."""
    times = radar.pulse_schedule(p, rng, frame_s)
    gains = radar.scan_gain_db(p, times, rng)
    gains = gains - (gains.max() if len(gains) else 0.0)
    b_ref = radar.nominal_bandwidth(p["components"][0])
    amp0 = math.sqrt(10 ** (snr_db / 10) * b_ref / rate)
    amps = amp0 * 10 ** (gains / 20)
    coef = ch.coeffs(times)  # (n_pulses, L)
    dly = np.round(ch.delays * rate).astype(np.int64)
    # Each pulse's power relative to the reference (strongest pulse, mean channel gain).
    pulse_gain = 10 ** (gains / 10) * np.sum(np.abs(coef) ** 2, axis=1)
    x = np.zeros(n_out, np.complex64)
    comp_info = []
    for c in p["components"]:
        w = radar.waveform(c, rate)
        f = f_c + c["f_offset_hz"]
        lw = len(w) + int(dly.max())
        shifted = np.zeros((len(dly), lw), np.complex64)
        for i, d in enumerate(dly):
            shifted[i, d:d + len(w)] = w
        shifted *= np.exp(2j * np.pi * f * np.arange(lw) / rate).astype(np.complex64)
        resp = fr_resp(np.fft.fftfreq(lw, 1 / rate))
        if np.any(resp < 1):
            shifted = np.fft.ifft(np.fft.fft(shifted, axis=1) * resp, axis=1).astype(
                np.complex64)
        starts = np.round((times + c["delay_s"]) * rate).astype(np.int64)
        phase = np.exp(2j * np.pi * f * starts / rate) if p["coherent"] else np.exp(
            1j * rng.uniform(-np.pi, np.pi, len(starts)))
        g = (coef * (amps * phase)[:, None]).astype(np.complex64)
        pulses = g @ shifted  # (n_pulses, lw)
        for k, s in enumerate(starts):
            a, b = max(s, 0), min(s + lw, n_out)
            if b > a:
                x[a:b] += pulses[k, a - s:b - s]
        prof = radar.column_profile(c, rate, f_c)
        comp_info.append({"t0": starts / rate, "t1": (starts + lw) / rate, "profile": prof,
                          "amp2": amp0 ** 2, "gain": pulse_gain, "b_nom":
                          radar.nominal_bandwidth(c), "f": f})
    return x, times, comp_info


def _radar_label_items(comp, snr_db, geo) -> list[tuple]:
    """Class-map items of one pulse component. Rows: those a pulse touches, each at its
    strongest pulse's level. Columns: where that pulse's peak per-bin power (256-point Hann,
    max over positions) reaches the noise's, united with the nominal band. The density is that
    per-column power, so a strong pulse's far sinc sidelobes lose to a carrier under them.
    Rows whose strongest pulse is below the IGNORE level become a separate item at -inf dB."""
    half = comp["b_nom"] / 2
    c0, c1 = geo.freq_to_col(comp["f"] - half), geo.freq_to_col(comp["f"] + half)
    idx = np.arange(N_COLS)
    band = (idx >= c0) & (idx <= c1)
    row_gain = labels.pulse_row_gain(geo, comp["t0"], comp["t1"], comp["gain"])
    bin_snr = row_gain[:, None] * (comp["profile"] * comp["amp2"])[None, :]
    mask = (row_gain > 0)[:, None] & ((bin_snr >= 1.0) | band[None, :])
    with np.errstate(divide="ignore"):
        weak = (snr_db + 10 * np.log10(row_gain) < labels.IGNORE_BELOW_SNR_DB)[:, None]
    # Density in the comm signals' unit (power per Hz, noise PSD = 1 / fs).
    dens = bin_snr / geo.sample_rate
    return [("radar", mask & ~weak, dens, snr_db), ("radar", mask & weak, dens, -math.inf)]


# ---------------------------------------------------------------------------------------------

def generate(rng: np.random.Generator, sample_rate: float = 61.44e6,
             frame_seconds: float = 0.04, spec: SceneSpec | None = None,
             preset: str = "realistic") -> Scene:
    """Generate one scene. ``spec=None`` draws one from the training distribution."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    if preset == "paper":
        from .paper import generate_paper

        return generate_paper(rng, sample_rate, spec)
    rate = float(sample_rate)
    n_out = int(round(rate * frame_seconds))
    geo = geometry(n_out, rate)  # validates rate and length
    if spec is None:
        spec = random_spec(rng, rate)
    nat = native_rate(rate)
    n_nat = int(round(nat * frame_seconds))
    imp = impmod.draw(rng, rate, spec.impairments, spec.center_freq)
    cfo = imp["cfo_hz"]

    def fr_resp(f):
        # Analogue front-end roll-off, applied to each signal in its own domain (cheap);
        # the thermal noise floor is left white (documented simplification).
        return impmod.rolloff_response(imp, f, rate)

    taken: list[tuple[float, float]] = []
    comm = np.zeros(n_nat, np.complex64)
    truths, label_items = [], []
    for kind, specs in (("NR", spec.nr), ("LTE", spec.lte)):
        mod = nr if kind == "NR" else lte
        for s in specs:
            p = mod.draw(rng, 0.95 * rate, s.params)
            lo, hi = mod.band_edges(p)
            ch_half = mod.channel_hz(p) / 2
            f_c = _place(rng, lo, hi, -ch_half, ch_half, rate, taken, p["scs_khz"] * 1e3,
                         s.f_center)
            if f_c is None:
                continue  # no room left for this carrier
            taken.append((f_c - ch_half, f_c + ch_half))
            ch = chmod.draw(rng, s.channel)
            snr = float(s.snr_db if s.snr_db is not None else rng.uniform(-10, 30))
            x, info = _ofdm_signal(rng, kind, p, ch, f_c, snr, rate, nat, n_nat, n_out,
                                   fr_resp)
            comm += x
            f_lo, f_hi = f_c + lo + cfo, f_c + hi + cfo
            # frame_offset_s: the frame starts this long after slot/subframe start_*.
            p = dict(p, f_center=f_c, channel=ch.params, occupied_hz=info["occ"],
                     frame_offset_s=info["offset_s"])
            on0, on1 = info["on"]
            truths.append(SignalTruth(kind, f_lo, f_hi, int(round(on0 * rate)),
                                      int(round((on1 - on0) * rate)), snr, p))
            act = labels.ofdm_activity_mask(geo, info["active"], info["t0"], info["t1"],
                                            info["freqs"] + cfo)
            rowp = labels.row_peak_power(x, nat, geo)
            label_items.append((kind, act, rowp[:, None] / info["occ"] * act, snr))
    if nat != rate:
        from fractions import Fraction

        from scipy.signal import resample_poly

        fr = Fraction(rate / nat).limit_denominator(1000)
        comm = resample_poly(comm, fr.numerator, fr.denominator).astype(np.complex64)
        comm = comm[:n_out] if len(comm) >= n_out else np.pad(comm, (0, n_out - len(comm)))
    total = comm if nat == rate else comm.copy()
    for s in spec.radar:
        p = radar.draw(rng, rate, s.params)
        lo, hi = radar.band_edges(p)
        if s.f_center is not None:
            f_c = float(s.f_center)
        else:
            lim_lo, lim_hi = -0.48 * rate - lo, 0.48 * rate - hi
            f_c = float(rng.uniform(lim_lo, lim_hi)) if lim_hi > lim_lo else 0.0
        ch = chmod.draw(rng, s.channel or {"profile": str(rng.choice(
            ["none", "flat", "geometric", "EPA"], p=[0.35, 0.25, 0.3, 0.1]))})
        if s.snr_db is not None:
            snr = float(s.snr_db)
        else:
            snr = float(rng.uniform(40, 70) if rng.random() < 0.1 else rng.uniform(-10, 30))
        x, times, comps = _radar_signal(rng, p, ch, f_c, snr, rate, n_out, n_out / rate,
                                          fr_resp)
        total += x
        for c in comps:
            label_items += _radar_label_items(c, snr, geo)
        starts = np.concatenate([c["t0"] for c in comps]) if comps else np.zeros(0)
        ends = np.concatenate([c["t1"] for c in comps]) if comps else np.zeros(0)
        first = max(0, int(round(starts.min() * rate))) if len(starts) else 0
        last = min(n_out, int(round(ends.max() * rate))) if len(ends) else 0
        p = dict(p, f_center=f_c, channel=ch.params, pulse_times_s=times.tolist(),
                 n_pulses=len(times))
        truths.append(SignalTruth("radar", f_c + lo + cfo, f_c + hi + cfo, first,
                                  max(0, last - first), snr, p))
    if spec.noise:
        noise = rng.standard_normal(2 * n_out, dtype=np.float32)
        noise *= np.float32(math.sqrt(0.5))
        total += noise.view(np.complex64)
    elif not np.any(total):
        total = total.copy()
    iq = impmod.apply(total, imp, rate, rng)
    masks, cmap = labels.class_map(label_items)
    meta = {
        "generator": "gr_specdiff.scene", "generator_version": GENERATOR_VERSION,
        "package_version": __version__, "preset": preset, "sample_rate": rate,
        "native_rate": nat, "frame_seconds": n_out / rate, "n_samples": n_out,
        "center_freq": spec.center_freq, "noise": spec.noise, "impairments": imp,
        "snr_definition": "in-band: P_active / (N0 * B), N0 = 1/fs (unit-variance noise)",
        "signals": [t.to_dict() for t in truths],
    }
    meta = _jsonable(meta)
    for t, m in zip(truths, meta["signals"]):
        t.params = m["params"]
    return Scene(iq=iq, sample_rate=rate, signals=truths, masks=masks, class_map=cmap,
                 meta=meta)

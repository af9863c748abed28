# SPDX-License-Identifier: GPL-3.0-or-later
"""Radar timing, in-band SNR, Doppler spread and label coverage, measured from generated IQ."""

import numpy as np
import pytest

from gr_specdiff import LTE, NR, RADAR
from gr_specdiff.scene import LTESpec, NRSpec, RadarSpec, SceneSpec, generate
from gr_specdiff.scene import channel as chmod
from gr_specdiff.spectrogram import N_COLS, power_images

IDEAL = {"device": "ideal"}
NONE = {"profile": "none"}


def _rect_radar(width, prf, snr, f=0.0):
    return RadarSpec(snr_db=snr, f_center=f, channel=NONE, params={
        "kind": "rect", "width_s": width, "prf_hz": prf, "pri_jitter": 0.0,
        "stagger_ratios": [1.0], "scan": None})


def test_radar_prf_and_pulse_width_measured_from_iq():
    rate = 30.72e6
    for width, prf in ((1e-6, 1050.0), (20e-6, 3000.0)):
        spec = SceneSpec(radar=[_rect_radar(width, prf, 20)], impairments=IDEAL, noise=False)
        sc = generate(np.random.default_rng(1), rate, 0.02, spec)
        env = np.abs(sc.iq)
        on = env > 0.5 * env.max()
        rises = np.nonzero(np.diff(on.astype(int)) == 1)[0]
        falls = np.nonzero(np.diff(on.astype(int)) == -1)[0]
        falls = falls[falls > rises[0]]
        n = min(len(rises), len(falls))
        widths = (falls[:n] - rises[:n]) / rate
        assert abs(np.median(widths) - width) < 2 / rate + 0.02 * width
        assert abs(1 / np.median(np.diff(rises) / rate) - prf) < 0.01 * prf
        assert len(sc.signals[0].params["pulse_times_s"]) == len(rises) + (on[0] * 1)


def test_staggered_and_jittered_pri():
    rate = 15.36e6
    spec = SceneSpec(radar=[RadarSpec(snr_db=20, f_center=0.0, channel=NONE, params={
        "kind": "rect", "width_s": 2e-6, "prf_hz": 1000.0, "pri_jitter": 0.05,
        "stagger_ratios": [0.9, 1.1], "scan": None})], impairments=IDEAL, noise=False)
    sc = generate(np.random.default_rng(2), rate, 0.04, spec)
    pri = np.diff(sc.signals[0].params["pulse_times_s"])
    assert 0.9 * 0.95 - 1e-9 <= pri.min() * 1e3 and pri.max() * 1e3 <= 1.1 * 1.05 + 1e-9
    assert pri.std() > 0.03e-3


def _band_power_snr(iq, rate, f_lo, f_hi):
    """SNR in [f_lo, f_hi] from the periodogram: (in-band - N0 B) / (N0 B), N0 from outside."""
    spec = np.abs(np.fft.fftshift(np.fft.fft(iq))) ** 2 / len(iq)
    f = np.fft.fftshift(np.fft.fftfreq(len(iq), 1 / rate))
    inb = (f >= f_lo) & (f < f_hi)
    out = (np.abs(f) > 0.05 * rate) & ((f < f_lo - 1e6) | (f > f_hi + 1e6))
    out &= np.abs(f) < 0.45 * rate
    n0 = spec[out].mean()
    return 10 * np.log10((spec[inb].sum() - n0 * inb.sum()) / (n0 * inb.sum()))


@pytest.mark.parametrize("kind", ["NR", "LTE"])
def test_in_band_snr_of_comms(kind):
    rate = 15.36e6
    for snr in (-5.0, 10.0, 25.0):
        meas = []
        for seed in range(3):
            params = {"pdsch_load": 1.0, "pdcch_load": 1.0, "duplex": "FDD", "bw_mhz": 5}
            if kind == "NR":
                params.update(scs_khz=15, ssb_boost_db=0.0)
                s = NRSpec(snr_db=snr, f_center=-3e6, channel=NONE, params=params)
                spec = SceneSpec(nr=[s], impairments=IDEAL)
            else:
                s = LTESpec(snr_db=snr, f_center=-3e6, channel=NONE, params=params)
                spec = SceneSpec(lte=[s], impairments=IDEAL)
            sc = generate(np.random.default_rng(seed), rate, 0.01, spec)
            t = sc.signals[0]
            meas.append(_band_power_snr(sc.iq, rate, t.f_lower, t.f_upper))
        assert abs(np.mean(meas) - snr) < 0.5, (snr, meas)


def test_in_band_snr_of_radar_peak():
    """Radar SNR = peak power / (N0 / tau); with noise where measurable, noise-free at 0 dB."""
    rate = 61.44e6
    width = 5e-6
    n_w = int(width * rate)
    for snr, noise in ((0.0, False), (20.0, True), (30.0, True)):
        spec = SceneSpec(radar=[_rect_radar(width, 10000.0, snr)], impairments=IDEAL,
                         noise=noise)
        sc = generate(np.random.default_rng(3), rate, 0.02, spec)
        starts = np.round(np.asarray(sc.signals[0].params["pulse_times_s"]) * rate).astype(int)
        starts = starts[starts + n_w < len(sc.iq)]
        inner = np.concatenate([sc.iq[s + 10:s + n_w - 10] for s in starts])
        p_peak = np.mean(np.abs(inner) ** 2) - (1.0 if noise else 0.0)  # unit noise variance
        meas = 10 * np.log10(p_peak / ((1 / width) / rate))
        assert abs(meas - snr) < 0.5
    # The noise really has unit variance (N0 = 1 / fs).
    empty = generate(np.random.default_rng(0), rate, 0.005, SceneSpec(impairments=IDEAL))
    assert abs(np.mean(np.abs(empty.iq) ** 2) - 1) < 0.01


def test_doppler_spectrum_width_matches_fd():
    fd = 200.0
    fs = 4000.0
    t = np.arange(2 ** 15) / fs
    psd = np.zeros(len(t))
    for seed in range(8):
        ch = chmod.make(np.random.default_rng(seed), "flat", doppler_hz=fd)
        h = ch.coeffs(t)[:, 0]
        psd += np.abs(np.fft.fft(h)) ** 2
    f = np.fft.fftfreq(len(t), 1 / fs)
    p = psd / psd.sum()
    assert p[np.abs(f) > fd * 1.02].sum() < 1e-3  # nothing beyond f_D
    rms = np.sqrt(np.sum(p * f ** 2))
    assert abs(rms - fd / np.sqrt(2)) < 0.05 * fd  # Jakes: RMS spread f_D / sqrt(2)
    # Unit mean power (Rayleigh), for a TDL too.
    ch = chmod.make(np.random.default_rng(0), "TDL-C", doppler_hz=300, delay_spread_s=300e-9)
    h = ch.coeffs(np.arange(20000) / 1e4)
    assert abs(np.mean(np.sum(np.abs(h) ** 2, axis=1)) - 1) < 0.1
    assert ch.max_delay == pytest.approx(8.6523 * 300e-9)


def _mean_power_image(iq, rate):
    """Mean |X|^2 per pixel with the front end's STFT layout (clean energy)."""
    powers = power_images(iq, rate)
    return powers.mean, powers.geometry


@pytest.mark.parametrize("kind", ["NR", "LTE", "radar-rect", "radar-asr", "radar-lfm"])
def test_labels_cover_clean_energy_with_small_margin(kind):
    rate = 30.72e6
    rng = np.random.default_rng(7)
    if kind == "NR":
        spec = SceneSpec(nr=[NRSpec(snr_db=20, f_center=2e6, params={
            "scs_khz": 30, "bw_mhz": 20, "pdsch_load": 0.4})], impairments=IDEAL)
        cls = NR
    elif kind == "LTE":
        spec = SceneSpec(lte=[LTESpec(snr_db=20, f_center=-4e6, params={
            "bw_mhz": 10, "duplex": "TDD", "pdsch_load": 0.3})], impairments=IDEAL)
        cls = LTE
    else:
        rkind = kind.split("-")[1]
        spec = SceneSpec(radar=[RadarSpec(snr_db=30, f_center=3e6, params={"kind": rkind})],
                         impairments=IDEAL)
        cls = RADAR
    sc = generate(rng, rate, 0.02, spec)
    spec.noise = False
    clean = generate(np.random.default_rng(7), rate, 0.02, spec)
    np.testing.assert_array_equal(clean.masks, sc.masks)  # labels do not depend on the noise
    pimg, geo = _mean_power_image(clean.iq, rate)
    m = clean.masks[cls]
    assert pimg[m].sum() / pimg.sum() >= 0.95
    t = clean.signals[0]
    cols = np.nonzero(m.any(axis=0))[0]
    if kind in ("NR", "LTE"):
        # Margin: at most one column beyond the transmission band.
        assert cols.min() >= geo.freq_to_col(t.f_lower) - 1
        assert cols.max() <= geo.freq_to_col(t.f_upper) + 1
        assert m.sum() < 1.15 * (pimg > 1e-3 * pimg.max()).sum()
    else:
        # Radar rows: exactly the rows that hold pulse samples (channel echoes included).
        rows_with_energy = np.add.reduceat(np.abs(clean.iq) ** 2,
                                           geo.row_sample_edges[:-1]) > 0
        assert np.array_equal(m.any(axis=1), rows_with_energy)
    # Class map agrees with the masks where only one signal exists.
    assert set(np.unique(sc.class_map[m])) <= {cls}
    assert np.all(sc.class_map[~m] == 0)
    assert sc.masks.shape == (4, 256, N_COLS) and sc.class_map.dtype == np.uint8


def _full_nr_and_rect_radar(nr_snr, nr_f, scs_khz, radar_snr, radar_f, width, prf):
    """A fully loaded 10 MHz NR carrier and a fixed-beam rect radar, ideal receiver."""
    return SceneSpec(nr=[NRSpec(snr_db=nr_snr, f_center=nr_f, params={
        "scs_khz": scs_khz, "bw_mhz": 10, "pdsch_load": 1.0, "duplex": "FDD"})],
        radar=[RadarSpec(snr_db=radar_snr, f_center=radar_f, channel=NONE, params={
            "kind": "rect", "width_s": width, "prf_hz": prf, "scan": None})],
        impairments=IDEAL)


def test_overlap_tie_break_and_ignore():
    rate = 15.36e6
    spec = _full_nr_and_rect_radar(10, 0.0, 15, 30, 0.0, 10e-6, 1000.0)
    sc = generate(np.random.default_rng(1), rate, 0.02, spec)
    both = sc.masks[NR] & sc.masks[RADAR]
    assert both.any()
    # In its main lobe the radar is 20 dB stronger per Hz than NR where it pulses; its sinc
    # sidelobes (labelled because they reach the noise PSD) are weaker than NR, so NR wins.
    geo = power_images(sc.iq, rate).geometry
    c = geo.freq_to_col(0.0)
    main_lobe, far = both.copy(), both.copy()
    main_lobe[:, np.r_[:c - 2, c + 3:N_COLS]] = False
    far[:, c - 7:c + 8] = False
    assert main_lobe.any() and far.any()
    assert np.all(sc.class_map[main_lobe] == RADAR)
    assert np.all(sc.class_map[far] == NR)
    spec.nr[0].snr_db = -20.0
    weak = generate(np.random.default_rng(1), rate, 0.02, spec)
    only_nr = weak.masks[NR] & ~weak.masks[RADAR]
    assert np.all(weak.class_map[only_nr] == 255)  # below -15 dB: IGNORE


def test_radar_sidelobes_under_a_stronger_carrier_stay_with_the_carrier():
    # A 63 dB rect pulse's sinc sidelobes reach the noise PSD across most of the band; under an
    # NR carrier they are far weaker per Hz than the carrier, so those pixels are NR.
    rate = 30.72e6
    spec = _full_nr_and_rect_radar(25, -6e6, 30, 63, 6e6, 7e-6, 3000.0)
    sc = generate(np.random.default_rng(3), rate, 0.02, spec)
    both = sc.masks[NR] & sc.masks[RADAR]
    assert both.sum() > 1000  # the sidelobes really do reach under the carrier
    assert np.mean(sc.class_map[both] == NR) > 0.99
    geo = power_images(sc.iq, rate).geometry
    main_lobe = geo.freq_to_col(6e6)
    assert np.all(sc.class_map[sc.masks[RADAR].any(axis=1), main_lobe] == RADAR)


def test_scanning_radar_pulses_labelled_at_their_own_level():
    # Main beam early in the frame, sidelobes 55 dB down: at 30 dB in-band SNR the sidelobe
    # pulses are at about -25 dB (IGNORE), the main-beam pulses are radar over a wider band.
    rate = 15.36e6
    scan = {"rpm": 15.0, "beamwidth_deg": 1.4, "sidelobe_db": -55.0}
    spec = SceneSpec(radar=[RadarSpec(snr_db=30, f_center=0.0, channel=NONE, params={
        "kind": "rect", "width_s": 2e-6, "prf_hz": 2000.0, "scan": scan, "main_beam": True,
        "beam_time_s": 0.002})], impairments=IDEAL, noise=False)
    sc = generate(np.random.default_rng(4), rate, 0.04, spec)
    times = np.asarray(sc.signals[0].params["pulse_times_s"])
    geo = power_images(sc.iq + 1e-3, rate).geometry
    beam_rows = geo.sample_to_row((times[np.abs(times - 0.002) < 2e-3] * rate).astype(int))
    side_rows = geo.sample_to_row((times[times > 0.035] * rate).astype(int))  # 3 deg off
    assert np.all(sc.masks[RADAR][beam_rows].any(axis=1))
    assert np.all(sc.masks[RADAR][side_rows].any(axis=1))  # energy is there: mask keeps it
    assert np.any(sc.class_map[beam_rows] == RADAR)
    assert not np.any(sc.class_map[side_rows] == RADAR)
    assert np.all(sc.class_map[side_rows][sc.masks[RADAR][side_rows]] == 255)
    widest = lambda rows: sc.masks[RADAR][rows].sum(axis=1).max()  # noqa: E731
    assert widest(beam_rows) > widest(side_rows)


@pytest.mark.parametrize("rate", [61.44e6, 30.72e6, 20e6, 19.2e6, 15.36e6])
def test_random_scenes_at_every_rate(rate):
    for seed in range(2):
        sc = generate(np.random.default_rng(seed), rate, 0.01)
        assert sc.iq.dtype == np.complex64 and len(sc.iq) == round(rate * 0.01)
        assert np.all(np.isfinite(sc.iq))
        assert sc.features().shape == (3, 256, 256)
        import json

        json.dumps(sc.meta)
        for t in sc.signals:
            assert t.kind in ("NR", "LTE", "radar") and t.f_lower < t.f_upper
    comms = [t for t in sc.signals if t.kind != "radar"]
    for a in comms:
        for b in comms:
            if a is not b:
                assert a.f_upper <= b.f_lower or b.f_upper <= a.f_lower

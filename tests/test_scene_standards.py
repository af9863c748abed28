# SPDX-License-Identifier: GPL-3.0-or-later
"""The NR/LTE generators follow 38.211/36.211: sequences, timing, bandwidths, burst periods,
TDD gaps, and a correlator finds the cell identity in generated IQ through fading at 0 dB."""

import numpy as np
import pytest

from gr_specdiff.scene import LTESpec, NRSpec, SceneSpec, generate, lte, native_rate, nr, sequences
from gr_specdiff.scene.scene import SUPPORTED_RATES

IDEAL = {"device": "ideal"}


# --- sequences equal the formulas (independent straight-line implementations) -----------------

def _m_seq(taps, init, n=127):
    x = list(init)
    while len(x) < n + len(init):
        i = len(x) - len(init)
        x.append(sum(x[i + t] for t in taps) % 2)
    return x


def test_nr_pss_sss_formulas():
    x = _m_seq((4, 0), [0, 1, 1, 0, 1, 1, 1])
    x0 = _m_seq((4, 0), [1, 0, 0, 0, 0, 0, 0])
    x1 = _m_seq((1, 0), [1, 0, 0, 0, 0, 0, 0])
    for n_id2 in range(3):
        want = [1 - 2 * x[(n + 43 * n_id2) % 127] for n in range(127)]
        np.testing.assert_array_equal(sequences.nr_pss(n_id2), want)
    for n_id1 in (0, 1, 111, 112, 200, 335):
        for n_id2 in range(3):
            m0 = 15 * (n_id1 // 112) + 5 * n_id2
            m1 = n_id1 % 112
            want = [(1 - 2 * x0[(n + m0) % 127]) * (1 - 2 * x1[(n + m1) % 127])
                    for n in range(127)]
            np.testing.assert_array_equal(sequences.nr_sss(n_id1, n_id2), want)
    # PSS have a flat periodic autocorrelation; the three differ.
    p = [sequences.nr_pss(i) for i in range(3)]
    assert abs(np.dot(p[0], p[1])) < 20 and np.dot(p[0], p[0]) == 127


def test_lte_pss_sss_formulas():
    for n_id2, u in enumerate((25, 29, 34)):
        d = sequences.lte_pss(n_id2)
        for n in (0, 5, 30):
            assert np.isclose(d[n], np.exp(-1j * np.pi * u * n * (n + 1) / 63), atol=1e-5)
        for n in (31, 40, 61):
            assert np.isclose(d[n], np.exp(-1j * np.pi * u * (n + 1) * (n + 2) / 63), atol=1e-5)
    # (m0, m1) pairs of 36.211 Table 6.11.2.1-1 and their uniqueness.
    assert sequences.lte_sss_m(0) == (0, 1)
    assert sequences.lte_sss_m(29) == (29, 30)
    assert sequences.lte_sss_m(30) == (0, 2)
    assert len({sequences.lte_sss_m(i) for i in range(168)}) == 168
    # SSS of subframes 0 and 5 differ and are +-1.
    a, b = sequences.lte_sss(17, 1, 0), sequences.lte_sss(17, 1, 5)
    assert set(np.unique(a)) == {-1, 1} and not np.array_equal(a, b)


def test_gold_sequence_matches_direct_lfsr():
    def direct(c_init, length):
        x1 = [1] + [0] * 30
        x2 = [(c_init >> i) & 1 for i in range(31)]
        for n in range(1600 + length):
            x1.append((x1[n + 3] + x1[n]) % 2)
            x2.append((x2[n + 3] + x2[n + 2] + x2[n + 1] + x2[n]) % 2)
        return [(x1[n + 1600] + x2[n + 1600]) % 2 for n in range(length)]

    for c_init in (0, 1, 12345, 2 ** 30 + 7):
        np.testing.assert_array_equal(sequences.gold(c_init, 100)[0], direct(c_init, 100))


# --- OFDM timing -------------------------------------------------------------------------------

@pytest.mark.parametrize("rate", SUPPORTED_RATES)
def test_symbol_and_cp_lengths_fill_slots_exactly(rate):
    nat = native_rate(rate)
    for scs, mu in ((15, 0), (30, 1)):
        nfft = round(nat / (scs * 1e3))
        assert nfft * scs * 1e3 == nat
        cp = nr.cp_lengths(nfft, mu, 2 << mu)  # two subframes
        per_slot = (cp + nfft).reshape(-1, 14).sum(axis=1)
        assert np.all(per_slot == nat * 1e-3 / (1 << mu))
        half = (cp + nfft).reshape(-1, 7 << mu).sum(axis=1)  # every half-subframe: 0.5 ms
        assert np.all(half == nat * 0.5e-3)
    nfft = round(nat / 15e3)
    cp = lte.cp_lengths(nfft, 2)
    assert np.all((cp + nfft).reshape(-1, 14).sum(axis=1) == nat * 1e-3)
    assert np.all((cp + nfft).reshape(-1, 7).sum(axis=1) == nat * 0.5e-3)
    if nat == 61.44e6:
        assert nr.cp_lengths(4096, 0, 1)[:8].tolist() == [320] + [288] * 6 + [320]
        assert nr.cp_lengths(2048, 1, 2)[[0, 1, 14]].tolist() == [176, 144, 176]
        assert lte.cp_lengths(4096, 1)[:2].tolist() == [320, 288]


# --- occupied bandwidth --------------------------------------------------------------------

def _full_load(kind, **params):
    base = {"pdsch_load": 1.0, "pdcch_load": 1.0, "duplex": "FDD"}
    if kind == "NR":
        base.update(coreset_rb_start=0, ssb_boost_db=0.0)
    base.update(params)
    return base


def _occupied_width(iq, rate):
    """Distance between the half-power crossings of the Welch PSD (256 bins = columns)."""
    from scipy.signal import welch

    _, p = welch(iq, fs=rate, nperseg=256, return_onesided=False, window="hann",
                 detrend=False)
    p = np.fft.fftshift(p)
    ref = np.median(p[p > 0.1 * p.max()])
    above = np.nonzero(p >= ref / 2)[0]
    i0, i1 = above[0], above[-1]
    lo = i0 - (p[i0] - ref / 2) / (p[i0] - p[i0 - 1])  # linear interpolation in power
    hi = i1 + (p[i1] - ref / 2) / (p[i1] - p[i1 + 1])
    return float((hi - lo) * rate / 256)


NR_CONFIGS = [(s, b) for s in (15, 30) for b in nr.allowed_bandwidths(s, 0.95 * 61.44e6)]


@pytest.mark.parametrize("scs,bw", NR_CONFIGS)
def test_nr_occupied_bandwidth(scs, bw):
    n_rb = nr.NRB_TABLE[scs][bw]
    params = _full_load("NR", scs_khz=scs, bw_mhz=bw, coreset_n_rb=6 * (n_rb // 6))
    spec = SceneSpec(nr=[NRSpec(snr_db=20, f_center=0.0, channel={"profile": "none"},
                                params=params)], impairments=IDEAL, noise=False)
    sc = generate(np.random.default_rng(bw), 61.44e6, 0.002, spec)
    want = n_rb * 12 * scs * 1e3
    assert abs(_occupied_width(sc.iq, 61.44e6) - want) < 240e3
    assert abs((sc.signals[0].f_upper - sc.signals[0].f_lower) - want) < 1


@pytest.mark.parametrize("bw", list(lte.NRB_TABLE))
def test_lte_occupied_bandwidth(bw):
    spec = SceneSpec(lte=[LTESpec(snr_db=20, f_center=0.0, channel={"profile": "none"},
                                  params=_full_load("LTE", bw_mhz=bw))],
                     impairments=IDEAL, noise=False)
    sc = generate(np.random.default_rng(3), 61.44e6, 0.002, spec)
    want = lte.NRB_TABLE[bw] * 12 * 15e3
    assert abs(_occupied_width(sc.iq, 61.44e6) - want) < 240e3


# --- PSS/SSS correlator: cell identity through fading at 0 dB --------------------------------

def _replica(freq_seq, bins, nfft):
    buf = np.zeros(nfft, np.complex64)
    buf[bins % nfft] = freq_seq
    return np.fft.ifft(buf)


def _xcorr(x, h):
    n = len(x) + len(h)
    nf = 1 << (n - 1).bit_length()
    return np.abs(np.fft.ifft(np.fft.fft(x, nf) * np.conj(np.fft.fft(h, nf)))[: len(x)])


def _detect(iq, nfft, pss_bins, sss_bins, pss_of, sss_cands, sss_offset):
    """PSS by time-domain correlation, then SSS by coherent frequency-domain correlation."""
    best = max((np.max(c := _xcorr(iq, _replica(pss_of(i), pss_bins, nfft))), i, int(np.argmax(c)))
                for i in range(3))
    _, n_id2, t = best
    y_p = np.fft.fft(iq[t:t + nfft])
    ys = iq[t + sss_offset:t + sss_offset + nfft]
    y_s = np.fft.fft(ys)
    h = y_p[pss_bins % nfft] / pss_of(n_id2)
    z = y_s[sss_bins % nfft] * np.conj(h) / (np.abs(h) ** 2 + 0.1 * np.mean(np.abs(h) ** 2))
    scores = [np.real(np.sum(z * np.asarray(c(n_id2)))) for c in sss_cands]
    return n_id2, int(np.argmax(scores)), t


def test_nr_cell_id_recovered_at_0db_through_fading():
    rate = 15.36e6
    n_id = 3 * 217 + 2
    p = {"scs_khz": 15, "bw_mhz": 10, "n_id": n_id, "ssb_period_ms": 10, "ssb_rb_offset": 10,
         "duplex": "FDD", "pdsch_load": 1.0}
    spec = SceneSpec(nr=[NRSpec(snr_db=0.0, f_center=1.5e6, params=p,
                                channel={"profile": "EPA", "doppler_hz": 5.0})],
                     impairments=IDEAL)
    sc = generate(np.random.default_rng(11), rate, 0.02, spec)
    nfft, cp = 1024, 72
    n_sc = 52 * 12
    k0 = p["ssb_rb_offset"] * 12 + 56
    bins = np.arange(127) + k0 - n_sc // 2 + int(round(1.5e6 / 15e3))
    cands = [lambda n2, n1=n1: sequences.nr_sss(n1, n2) for n1 in range(336)]
    n_id2, n_id1, _ = _detect(sc.iq, nfft, bins, bins, sequences.nr_pss, cands,
                              2 * (nfft + cp))
    assert (n_id1, n_id2) == divmod(n_id, 3)


def test_lte_cell_id_recovered_at_0db_through_fading():
    rate = 15.36e6
    cell_id = 3 * 101 + 1
    p = {"bw_mhz": 5, "cell_id": cell_id, "duplex": "FDD", "pdsch_load": 1.0}
    spec = SceneSpec(lte=[LTESpec(snr_db=0.0, f_center=-2e6, params=p,
                                  channel={"profile": "EVA", "doppler_hz": 70.0})],
                     impairments=IDEAL)
    sc = generate(np.random.default_rng(5), rate, 0.012, spec)
    nfft, cp = 1024, 72
    n = np.arange(62)
    shift = int(round(-2e6 / 15e3))
    bins = np.where(n < 31, n - 31, n - 30) + shift
    cands = [lambda n2, n1=n1, sf=sf: sequences.lte_sss(n1, n2, sf)
             for sf in (0, 5) for n1 in range(168)]
    n_id2, idx, _ = _detect(sc.iq, nfft, bins, bins, sequences.lte_pss, cands, -(nfft + cp))
    assert (idx % 168, n_id2) == divmod(cell_id, 3)


# --- periodicities and TDD gaps ------------------------------------------------------------

def _peaks(c, min_gap):
    """Indices of local maxima above half the maximum, at least ``min_gap`` apart."""
    idx = np.argsort(c)[::-1]
    out = []
    for i in idx:
        if c[i] < 0.5 * c[idx[0]]:
            break
        if all(abs(i - j) >= min_gap for j in out):
            out.append(int(i))
    return sorted(out)


def test_ssb_period_and_lte_pss_period_visible():
    rate = 15.36e6
    p = {"scs_khz": 15, "bw_mhz": 10, "n_id": 5, "ssb_period_ms": 10, "ssb_rb_offset": 0,
         "l_max": 4, "ssb_bitmap": [1, 0, 0, 0], "duplex": "FDD", "pdsch_load": 0.0,
         "pdcch_load": 0.0}
    spec = SceneSpec(nr=[NRSpec(snr_db=10, f_center=0.0, params=p,
                                channel={"profile": "none"})], impairments=IDEAL)
    sc = generate(np.random.default_rng(2), rate, 0.04, spec)
    bins = np.arange(127) + 56 - 52 * 6
    c = _xcorr(sc.iq, _replica(sequences.nr_pss(5 % 3), bins, 1024))
    gaps = np.diff(_peaks(c, 1000)) / rate
    assert len(gaps) >= 3 and np.allclose(gaps, 0.010, atol=2e-6)
    spec = SceneSpec(lte=[LTESpec(snr_db=10, f_center=0.0, channel={"profile": "none"},
                                  params={"bw_mhz": 5, "cell_id": 7, "duplex": "FDD",
                                          "pdsch_load": 0.0, "pdcch_load": 0.1})],
                     impairments=IDEAL)
    sc = generate(np.random.default_rng(3), rate, 0.03, spec)
    n = np.arange(62)
    c = _xcorr(sc.iq, _replica(sequences.lte_pss(7 % 3), np.where(n < 31, n - 31, n - 30), 1024))
    gaps = np.diff(_peaks(c, 1000)) / rate
    assert len(gaps) >= 4 and np.allclose(gaps, 0.005, atol=2e-6)


def test_tdd_gaps_follow_the_pattern():
    rate = 15.36e6
    p = {"scs_khz": 30, "bw_mhz": 10, "duplex": "TDD", "tdd_pattern": "DDDSU",
         "special_dl_symbols": 10, "pdsch_load": 1.0, "pdcch_load": 1.0}
    spec = SceneSpec(nr=[NRSpec(snr_db=20, f_center=0.0, params=p,
                                channel={"profile": "none"})], impairments=IDEAL, noise=False)
    sc = generate(np.random.default_rng(4), rate, 0.01, spec)
    par = sc.signals[0].params
    slot = int(rate * 0.5e-3)
    off = int(round(par["frame_offset_s"] * rate))
    padded = np.concatenate([np.zeros(off, np.complex64), sc.iq])
    n_slots = len(padded) // slot
    pw = (np.abs(padded[: n_slots * slot]) ** 2).reshape(n_slots, slot)
    for k in range(1, n_slots):
        kind = "DDDSU"[(par["start_slot"] + k) % 5]
        if kind == "U":
            assert pw[k].max() < 1e-6 * pw.max()
        elif kind == "D":
            assert pw[k].mean() > 0.1 * pw.mean()
        else:  # special: 10 DL symbols, then the guard + UL part is silent
            assert pw[k, -slot // 14 * 3:].max() < 1e-6 * pw.max()

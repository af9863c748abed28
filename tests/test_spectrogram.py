# SPDX-License-Identifier: GPL-3.0-or-later
"""The shared spectrogram front end: known signals land where physics says they must."""

import numpy as np
import pytest
import torch

from gr_specdiff import spectrogram as sg

FS = 61.44e6
N40 = int(sg.FRAME_SECONDS * FS)  # 2,457,600 samples


def noise(n, rng, power=1.0):
    scale = np.sqrt(power / 2)
    return (rng.normal(0, scale, n) + 1j * rng.normal(0, scale, n)).astype(np.complex64)


def db_above_floor(feats, channel):
    return feats[channel] * (sg.DB_HIGH - sg.DB_LOW) + sg.DB_LOW


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(1234)


def test_geometry_40ms_at_paper_rate_uses_every_sample():
    geo = sg.geometry(N40, FS)
    assert geo.hop == 128 and geo.n_segments == 19200
    assert np.all(np.diff(geo.row_segment_edges) == 75)
    assert geo.row_sample_edges[-1] == N40
    assert geo.col_width == pytest.approx(240e3)
    assert geo.row_times[1] == pytest.approx(156.25e-6)
    assert geo.col_freqs[128] == 0.0 and geo.col_freqs[0] == pytest.approx(-FS / 2)


def test_hann_windows_overlap_add_to_constant():
    w = sg.hann_window(np.float64)
    total = w[:128] + w[128:]
    np.testing.assert_allclose(total, 1.0, atol=1e-12)


@pytest.mark.parametrize("rate", [61.44e6, 30.72e6, 20e6, 19.2e6, 15.36e6, 1e6])
def test_every_rate_gives_full_image(rate, rng):
    n = int(0.04 * rate)
    spec = sg.compute_features(noise(n, rng), rate)
    assert spec.features.shape == (3, 256, 256) and spec.features.dtype == np.float32
    geo = spec.geometry
    assert geo.n_segments * geo.hop >= n  # every sample is inside some segment
    assert np.all(np.diff(geo.row_segment_edges) >= 1)


def test_uneven_frame_length_is_handled(rng):
    n = 800_001  # 20 MS/s, 40 ms + 1 sample: not a multiple of the hop or of 256 rows
    spec = sg.compute_features(noise(n, rng), 20e6)
    assert spec.geometry.row_sample_edges[-1] == n
    assert np.isfinite(spec.features).all()


def test_tone_lands_in_right_column_at_right_power(rng):
    n = int(0.04 * 20e6)
    t = np.arange(n) / 20e6
    geo = sg.geometry(n, 20e6)
    f = geo.col_freqs[200]  # exactly on a bin centre
    # Hann-256: a tone of amplitude A gives |A * sum(w)|^2 = A^2 * 128^2 in its bin, unit-power
    # noise gives sum(w^2) = 96 per bin: choose A for a 30 dB tone-to-noise ratio per bin.
    amp = np.sqrt(1000 * 96 / 128 ** 2)
    x = noise(n, rng) + (amp * np.exp(2j * np.pi * f * t)).astype(np.complex64)
    spec = sg.compute_features(x, 20e6)
    mean_db = db_above_floor(spec.features, 0)
    col_profile = mean_db.mean(axis=0)
    assert int(np.argmax(col_profile)) == 200
    assert col_profile[200] == pytest.approx(30.0, abs=1.0)
    assert np.all(col_profile[np.r_[0:190, 210:256]] < 2.0)


def test_burst_lands_in_right_rows(rng):
    rate = 20e6
    n = int(0.04 * rate)
    x = noise(n, rng)
    geo = sg.geometry(n, rate)
    start, stop = geo.row_sample_edges[100], geo.row_sample_edges[140]
    t = np.arange(stop - start) / rate
    x[start:stop] += 10 * np.exp(2j * np.pi * 3e6 * t).astype(np.complex64)
    feats = sg.compute_features(x, rate).features
    row_profile = db_above_floor(feats, 0).max(axis=1)
    on = np.where(row_profile > 20)[0]
    # The window straddles the boundary rows by half an FFT at most.
    assert on.min() in (99, 100) and on.max() in (139, 140)


def test_short_pulse_visible_in_peak_channel_not_in_mean():
    x = noise(N40, np.random.default_rng(7))
    geo = sg.geometry(N40, FS)
    start = geo.row_sample_edges[77] + 4000
    width = int(1e-6 * FS)  # 1 us pulse = 61 samples, 20 dB above the total noise power
    x[start:start + width] += np.complex64(10.0)
    feats = sg.compute_features(x, FS).features

    def rise(channel):  # how far the pulse row stands above every other row, in dB
        rows = np.median(db_above_floor(feats, channel)[:, 118:138], axis=1)
        return rows[77] - np.delete(rows, [76, 77, 78]).max()

    assert rise(1) > 6  # max-hold shows the pulse
    assert rise(0) < 4  # the mean dilutes it into the noise (61 of 9,600 samples)
    assert rise(1) > rise(0) + 4


def test_white_noise_is_flat(rng):
    feats = sg.compute_features(noise(N40, rng), FS).features
    mean_db = db_above_floor(feats, 0)
    assert abs(np.median(mean_db)) < 0.5  # the 20th percentile sits ~0.4 dB under the median
    assert mean_db.std() < 0.8  # Welch over 75 segments: ~0.5 dB standard deviation
    cols = mean_db.mean(axis=0)
    assert cols.max() - cols.min() < 0.5


def test_scale_invariant(rng):
    x = noise(200_000, rng)
    a = sg.compute_features(x, 5e6).features
    b = sg.compute_features(x * 1e-3, 5e6).features
    np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.skipif(not sg.native_available(), reason="native kernel not built (make setup)")
@pytest.mark.parametrize("n", [N40, 800_001, 50_000, sg.MIN_SAMPLES])
def test_native_kernel_matches_numpy(n, rng):
    x = noise(n, rng)
    x[n // 3:n // 3 + 100] += 30  # a strong burst: large dynamic range in the same frame
    x[-50:] += 10  # energy in the wrapped tail
    ref = sg.compute_features(x, FS, backend="numpy").features
    out = sg.compute_features(x, FS, backend="native").features
    np.testing.assert_allclose(out, ref, atol=1e-5)  # 1e-5 of the 60 dB span: 0.0006 dB


def test_unknown_backend_is_refused(rng):
    with pytest.raises(ValueError, match="backend"):
        sg.compute_features(noise(10_000, rng), 1e6, backend="fftw")


@pytest.mark.parametrize("n", [N40, 800_001, 50_000])
def test_torch_matches_numpy(n, rng):
    x = noise(n, rng)
    x[1000:1100] += 30
    ref = sg.compute_features(x, FS, backend="numpy").features
    out, n_bad = sg.compute_features_torch(torch.from_numpy(x), FS)
    assert out.shape == (1, 3, 256, 256) and out.dtype == torch.float32
    np.testing.assert_allclose(out[0].numpy(), ref, atol=2e-5)
    assert int(n_bad[0]) == 0


def test_torch_batched(rng):
    xs = np.stack([noise(100_000, rng), noise(100_000, rng) * 5])
    out, _ = sg.compute_features_torch(torch.from_numpy(xs), 2.5e6)
    for i in range(2):
        np.testing.assert_allclose(out[i].numpy(), sg.compute_features(xs[i], 2.5e6).features,
                                   atol=2e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_torch_cuda_matches_numpy(rng):
    x = noise(N40, rng)
    out, _ = sg.compute_features_torch(torch.from_numpy(x).cuda(), FS)
    np.testing.assert_allclose(out[0].cpu().numpy(), sg.compute_features(x, FS).features,
                               atol=1e-4)


@pytest.mark.parametrize("backend", ["numpy", "auto"])
def test_nonfinite_samples_zeroed_and_counted(rng, backend):
    x = noise(100_000, rng)
    clean = x.copy()
    x[10] = np.nan
    x[20] = np.inf
    x[99_999] = complex(np.nan, 0)  # in the wrapped tail window
    spec = sg.compute_features(x, 2.5e6, backend=backend)
    assert spec.n_nonfinite == 3 and np.isfinite(spec.features).all()
    clean[[10, 20, 99_999]] = 0
    np.testing.assert_allclose(spec.features, sg.compute_features(clean, 2.5e6).features,
                               atol=2e-6)
    _, n_bad = sg.compute_features_torch(torch.from_numpy(x), 2.5e6)
    assert int(n_bad[0]) == 3


@pytest.mark.parametrize("bad, message", [
    (np.zeros(100_000, np.complex64), "all zeros"),
    (np.ones(100, np.complex64), "at least"),
    (np.ones(100_000, np.float32), "complex"),
    (np.ones((2, 100_000), np.complex64), "one-dimensional"),
])
@pytest.mark.parametrize("backend", ["numpy", "auto"])
def test_bad_input_gives_clear_error(bad, message, backend):
    with pytest.raises(ValueError, match=message):
        sg.compute_features(bad, 2.5e6, backend=backend)


def test_bad_sample_rate():
    with pytest.raises(ValueError, match="sample_rate"):
        sg.compute_features(np.ones(100_000, np.complex64), 0.0)
    with pytest.raises(ValueError, match="all zeros"):
        sg.compute_features_torch(torch.zeros(1, 100_000, dtype=torch.complex64), 1e6)


def test_model_input_appends_the_rate_plane():
    """One function builds what a rate-conditioned model sees, for numpy (blocks, datasets)
    and torch alike: the features unchanged plus a plane of log2(rate / 61.44 MS/s)."""
    feats = np.random.default_rng(0).random((3, 256, 256), dtype=np.float32)
    assert sg.model_input(feats, 20e6, False) is feats
    x = sg.model_input(feats, 15.36e6, True)
    assert x.shape == (4, 256, 256) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:3], feats)
    assert np.all(x[3] == -2.0)
    assert sg.rate_value(61.44e6) == 0.0
    t = sg.model_input(torch.from_numpy(feats[None]), 30.72e6, True)
    assert t.shape == (1, 4, 256, 256) and torch.all(t[0, 3] == -1.0)
    with pytest.raises(ValueError, match="sample rate must be > 0"):
        sg.model_input(feats, 0.0, True)


@pytest.mark.parametrize("rate", [61.44e6, 15.36e6])
def test_mirror_frequency_is_the_spectrogram_of_the_conjugated_iq(rate, rng):
    """The training flips and the test-time views rest on this: conj(iq) mirrors the image
    about DC, for every channel, so a mirrored frame is a real frame."""
    n = int(0.004 * rate)
    t = np.arange(n)
    burst = np.exp(2j * np.pi * 0.11 * t) * (t % 5000 < 700)  # off-centre, pulsed
    iq = (burst + noise(n, rng, 0.01)).astype(np.complex64)
    feats = sg.compute_features(iq, rate).features
    conj = sg.compute_features(np.conj(iq), rate).features
    assert np.abs(feats - conj).max() > 0.5  # the tone really moved
    # Exact in arithmetic; the FFT of the conjugate sums in another order, so a few ulp
    # of float32 apart (3e-6 seen on features in [0, 1]).
    np.testing.assert_allclose(sg.mirror_frequency(feats), conj, rtol=0, atol=2e-5)
    np.testing.assert_array_equal(sg.mirror_frequency(sg.mirror_frequency(feats)), feats)
    torch.testing.assert_close(sg.mirror_frequency(torch.from_numpy(feats)),
                               torch.from_numpy(conj), rtol=0, atol=2e-5)
    cols = sg.mirror_frequency(np.arange(256))
    assert cols[128] == 128 and cols[0] == 0 and cols[129] == 127

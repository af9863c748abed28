# SPDX-License-Identifier: GPL-3.0-or-later
"""Noise schedule and DPM-Solver++: fast == reference, closed form, determinism."""

import numpy as np
import pytest
import torch

from gr_specdiff.model.diffusion import (
    NoiseSchedule,
    cosine_alpha_bar,
    linear_alpha_bar,
    reference_sample,
    sample,
    solver_coefficients,
)
from gr_specdiff.model.pipeline import SpecDiffPipeline
from gr_specdiff.model.specdiff import SpecDiff, SpecDiffConfig

SCHED = NoiseSchedule("cosine", 1000)


def dummy_model(x, t):
    """A deterministic, nonlinear, time-dependent stand-in for the network."""
    return torch.tanh(x) * 0.7 + 0.05 * torch.sin(t / 100.0)[:, None, None, None]


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_schedule(kind):
    s = NoiseSchedule(kind, 1000)
    ab = s.alpha_bar64
    assert ab.dtype == np.float64 and s.alpha_bar.dtype == torch.float32
    assert np.all(np.diff(ab) < 0) and 0 < ab[-1] < 1e-3 and ab[0] > 0.99
    np.testing.assert_allclose(s.alpha64**2 + s.sigma64**2, 1.0, rtol=1e-12)
    with pytest.raises(ValueError):
        NoiseSchedule("nope")


def test_schedule_functions_golden():
    np.testing.assert_allclose(linear_alpha_bar(10)[0], 1 - 1e-4)
    ab = cosine_alpha_bar(1000)
    assert abs(ab[499] - 0.5) < 0.02  # cosine: half the signal power at mid-schedule


def test_timesteps():
    assert SCHED.t_max == int(np.nonzero(SCHED.alpha_bar64 >= 1e-4)[0][-1])
    assert SCHED.t_max == 992 and NoiseSchedule("linear").t_max == 953
    np.testing.assert_array_equal(SCHED.timesteps(1), [992])
    np.testing.assert_array_equal(SCHED.timesteps(4), [992, 744, 496, 248])
    for k in range(1, 21):
        ts = SCHED.timesteps(k)
        assert len(set(ts.tolist())) == k and np.all(np.diff(ts) < 0)
    for bad in (0, 21):
        with pytest.raises(ValueError, match="steps"):
            SCHED.timesteps(bad)


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("steps", [1, 2, 5, 10, 20])
@pytest.mark.parametrize("prediction", ["eps", "x0"])
def test_fast_matches_reference(order, steps, prediction):
    g = torch.Generator().manual_seed(1)
    x_T = torch.randn(2, 4, 8, 8, generator=g)
    ref = reference_sample(dummy_model, x_T, SCHED, steps, order, prediction, clip=1.0)
    fast = sample(dummy_model, x_T.shape, SCHED, steps, order, prediction, clip=1.0, x_T=x_T)
    assert torch.isfinite(fast).all()
    torch.testing.assert_close(fast, ref.float(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("steps", [1, 3, 10])
def test_perfect_noise_predictor_recovers_f0(order, steps):
    """If eps_theta(x_t, t) = (x_t - alpha_t F_0) / sigma_t exactly, the solver returns F_0."""
    g = torch.Generator().manual_seed(2)
    f0 = torch.rand(1, 4, 8, 8, generator=g, dtype=torch.float64) * 2 - 1
    abar = torch.from_numpy(SCHED.alpha_bar64)

    def oracle(x, t):
        ab = abar[t.long()].view(-1, 1, 1, 1)
        return ((x.double() - ab.sqrt() * f0) / (1 - ab).sqrt()).float()

    x_T = torch.randn(1, 4, 8, 8, generator=g)
    ref = reference_sample(oracle, x_T, SCHED, steps, order, "eps")
    torch.testing.assert_close(ref, f0, atol=1e-4, rtol=0)
    fast = sample(oracle, x_T.shape, SCHED, steps, order, "eps", x_T=x_T)
    torch.testing.assert_close(fast.double(), f0, atol=1e-3, rtol=0)


def test_intermediate_states_follow_forward_process():
    """With the oracle, every intermediate x_t equals alpha_t F_0 + sigma_t n (same n)."""
    ts, alpha, sigma, A, B = solver_coefficients(SCHED, 5, 3)
    f0 = np.linspace(-1, 1, 7)
    n = np.cos(np.arange(7.0))
    x = alpha[0] * f0 + sigma[0] * n
    ms = [f0, f0, f0]
    for i in range(4):
        x = A[i] * x + B[i, 0] * ms[0] + B[i, 1] * ms[1] + B[i, 2] * ms[2]
        np.testing.assert_allclose(x, alpha[i + 1] * f0 + sigma[i + 1] * n, atol=1e-10)


def test_coefficients_sum():
    """Consistency: a constant data prediction c with x = c is a fixed point of every update."""
    for order in (1, 2, 3):
        _, alpha, sigma, A, B = solver_coefficients(SCHED, 10, order)
        # x_t = alpha_t c + sigma_t * 0 => A_i alpha_i + sum B_i = alpha_{i+1}
        np.testing.assert_allclose(A[:-1] * alpha[:-1] + B[:-1].sum(1), alpha[1:], atol=1e-10)
        assert B[-1, 0] == 1.0 and A[-1] == 0.0


def test_deterministic_with_generator():
    def run(seed):
        return sample(dummy_model, (1, 4, 8, 8), SCHED, 5, 2,
                      generator=torch.Generator().manual_seed(seed))

    torch.testing.assert_close(run(3), run(3))
    assert not torch.allclose(run(3), run(4))


def test_pipeline_matches_eager_sampler():
    torch.manual_seed(0)
    cfg = SpecDiffConfig(enc_channels=(8, 8, 16), unet_channels=(8, 16, 16), ff_channels=16,
                         t_emb=16, t_hidden=16, prediction="eps")
    m = SpecDiff(cfg).eval()
    pipe = SpecDiffPipeline(m, steps=4, order=3, image_size=64, clip=1.0).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        cond, *_ = m.encode(x)
        got = pipe.sample_latent(cond, pipe.noise[0:1])
        want = sample(lambda f, t: m.denoise(f, t, cond), (2, 4, 8, 8), SCHED, 4, 3, "eps",
                      clip=1.0, x_T=pipe.noise[0:1].expand(2, -1, -1, -1))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)

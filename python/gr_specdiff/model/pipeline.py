# SPDX-License-Identifier: GPL-3.0-or-later
"""Inference pipelines as single scriptable modules (the exported-model contract).

``forward(x: (B, 3, H, W) float32) -> (class map (B, H, W) uint8, confidence (B, H, W) float32)``.

:class:`SpecDiffPipeline`: encoder -> K-step DPM-Solver++ over the latent mask (precomputed
coefficients, see ``diffusion.solver_coefficients``) -> decoder -> softmax. The initial noise
``x_T`` is a fixed buffer drawn once from a seeded ``torch.Generator`` when the pipeline is
built, so the exported model is deterministic (same frame, same output) and needs no RNG at run
time. With ``seeds > 1`` the softmax probabilities of several noise draws are averaged;
confidence is the probability of the chosen class (the max of the averaged softmax).

:class:`LogitsPipeline`: any ``logits = net(x)`` segmentation network (baselines) -> argmax +
max softmax.

:class:`FlipAveraged`: either of them with its probabilities averaged over flipped views of the
frame (test-time augmentation): baked into an export (``specdiff export --flips``) or put
around a loaded one (``load_model(..., flips=...)``, the segmenter's Flips parameter), since
every pipeline's scripted module keeps ``probabilities``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .diffusion import NoiseSchedule, solver_coefficients
from .specdiff import SpecDiff

#: Flips a frame can be viewed under without changing what is where: ``frequency`` is the
#: spectrogram of the conjugated IQ to float rounding (spectrogram.mirror_frequency), ``time``
#: is the frame played backwards and conjugated, to within the FFT grid (two hops, one sample).
FLIPS = ("frequency", "time")


def check_flips(flips) -> tuple[str, ...]:
    """``flips`` as a tuple of known :data:`FLIPS` names, or a ``ValueError`` naming the bad one."""
    flips = tuple(flips or ())
    for f in flips:
        if f not in FLIPS:
            raise ValueError(f"unknown flip {f!r}: choose from {', '.join(FLIPS)}")
    return flips


class SpecDiffPipeline(nn.Module):
    def __init__(
        self,
        model: SpecDiff,
        steps: int = 5,
        order: int = 2,
        schedule: str = "cosine",
        T: int = 1000,
        seeds: int = 1,
        seed: int = 0,
        clip: float = 1.0,
        image_size: int = 256,
    ):
        super().__init__()
        c = model.config
        self.encoder = model.encoder
        self.denoiser = model.denoiser
        self.decoder = model.decoder
        self.steps = int(steps)
        self.order = int(order)
        self.seeds = int(seeds)
        self.predict_x0 = c.prediction == "x0"
        self.clip = float(clip) * float(c.latent_scale)
        sched = NoiseSchedule(schedule, T)
        ts, alpha, sigma, A, B = solver_coefficients(sched, steps, order)
        self.register_buffer("t", torch.tensor(ts, dtype=torch.float32))
        self.register_buffer("alpha", torch.tensor(alpha, dtype=torch.float32))
        self.register_buffer("sigma", torch.tensor(sigma, dtype=torch.float32))
        self.register_buffer("coef_a", torch.tensor(A, dtype=torch.float32))
        self.register_buffer("coef_b", torch.tensor(B, dtype=torch.float32))
        r = image_size // c.downsample
        g = torch.Generator().manual_seed(int(seed))
        noise = torch.randn((self.seeds, c.n_classes, r, r), generator=g)
        self.register_buffer("noise", noise)

    def sample_latent(self, cond: Tensor, noise: Tensor) -> Tensor:
        """K solver steps from ``noise`` (1, C, r, r) broadcast over the batch of ``cond``."""
        b = cond.shape[0]
        x = noise.expand(b, -1, -1, -1).contiguous()
        m0 = torch.zeros_like(x)
        m1 = torch.zeros_like(x)
        m2 = torch.zeros_like(x)
        for i in range(self.steps):
            t = self.t[i].expand(b)
            out = self.denoiser(x, t, cond)
            if self.predict_x0:
                m = out
            else:
                m = (x - self.sigma[i] * out) / self.alpha[i]
            if self.clip > 0:
                m = m.clamp(-self.clip, self.clip)
            m2 = m1
            m1 = m0
            m0 = m
            x = (
                self.coef_a[i] * x
                + self.coef_b[i, 0] * m0
                + self.coef_b[i, 1] * m1
                + self.coef_b[i, 2] * m2
            )
        return x

    @torch.jit.export
    def probabilities(self, x: Tensor) -> Tensor:
        """Softmax class probabilities ``(B, n_classes, H, W)``, averaged over the noise seeds."""
        cond, s1, s2, s3 = self.encoder(x)
        r = cond.shape[-1]
        if not torch.jit.is_scripting():
            if self.noise.shape[-1] != r or self.noise.shape[-2] != cond.shape[-2]:
                raise ValueError(
                    f"pipeline built for {self.noise.shape[-1]} x {self.noise.shape[-1]} latents, "
                    f"input gives {tuple(cond.shape[-2:])}"
                )
        probs = torch.zeros(0)
        for s in range(self.seeds):
            f0 = self.sample_latent(cond, self.noise[s : s + 1])
            p = torch.softmax(self.decoder(f0, s1, s2, s3, x), dim=1)
            probs = p if s == 0 else probs + p
        return probs / float(self.seeds)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        conf, cls = self.probabilities(x).max(dim=1)
        return cls.to(torch.uint8), conf


class LogitsPipeline(nn.Module):
    """Wrap a logits network (baselines) into the exported-model contract."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    @torch.jit.export
    def probabilities(self, x: Tensor) -> Tensor:
        return torch.softmax(self.net(x), dim=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        conf, cls = self.probabilities(x).max(dim=1)
        return cls.to(torch.uint8), conf


class FlipAveraged(nn.Module):
    """``pipe`` (a pipeline with ``probabilities``) run on every combination of ``flips`` of
    the frame in one batch (2 or 4 views), each view's probabilities flipped back, averaged.
    A network that has seen a frame only one way round still errs differently on its mirror
    image; the average keeps what the views agree on. Costs one pass per view."""

    def __init__(self, pipe: nn.Module, flips):
        super().__init__()
        flips = check_flips(flips)
        if not flips:
            raise ValueError("FlipAveraged needs at least one flip")
        self.pipe = pipe
        self.flips = list(flips)
        self.frequency = "frequency" in flips
        self.time = "time" in flips

    @staticmethod
    def _mirror(x: Tensor) -> Tensor:
        """``spectrogram.mirror_frequency`` (scriptable): column c <-> (W - c) % W."""
        n = x.shape[-1]
        return x.index_select(-1, (n - torch.arange(n, device=x.device)) % n)

    def _views(self, x: Tensor) -> Tensor:
        """The frame's views stacked on the batch axis: x, [mirrored], [reversed, [both]]."""
        if self.frequency:
            x = torch.cat([x, self._mirror(x)], dim=0)
        if self.time:
            x = torch.cat([x, x.flip(-2)], dim=0)
        return x

    @torch.jit.export
    def probabilities(self, x: Tensor) -> Tensor:
        b = x.shape[0]
        p = self.pipe.probabilities(self._views(x))
        # Undo the flips in reverse order (each is its own inverse).
        if self.time:  # the second half holds the reversed views
            half = p.shape[0] // 2
            p = torch.cat([p[:half], p[half:].flip(-2)], dim=0)
        if self.frequency:  # every second block of b frames holds mirrored views
            pairs = p.reshape(-1, 2, b, p.shape[1], p.shape[2], p.shape[3])
            p = torch.cat([pairs[:, :1], self._mirror(pairs[:, 1:])],
                          dim=1).reshape(p.shape)
        return p.reshape(-1, b, p.shape[1], p.shape[2], p.shape[3]).mean(dim=0)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        conf, cls = self.probabilities(x).max(dim=1)
        return cls.to(torch.uint8), conf

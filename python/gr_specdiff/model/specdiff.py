# SPDX-License-Identifier: GPL-3.0-or-later
"""SpecDiff: latent-diffusion spectrogram segmentation (paper section II-B).

Three networks, each a plain ``nn.Module`` with a typed ``forward``; none of them knows the
noise schedule or the sampler (``diffusion.py``, ``pipeline.py``):

* :class:`Encoder` (eq. 4, 5): an optional space-to-depth stem (``stem`` > 1, the ``lite``
  variant), then 3 stages of FS + 2x2 max pooling, widths ``enc_channels`` (paper 32/48/96).
  The last pooled map is the condition ``F_c^0`` (``96 x 32 x 32`` for a 256 x 256 input).
  The pre-pool stage outputs are kept as skip features for the decoder.
* :class:`NoiseNet` (eq. 6-11): predicts the noise (or the clean latent, ``prediction="x0"``)
  of the noisy latent mask ``F_t`` from ``F_t``, ``t`` and ``F_c^0``: TCS blocks, 3-stage down
  path, conditional path CP, frequency filter FF, sigmoid-gated q/k/v fusion, 3 up stages
  (2x nearest upsampling + TCS, with U-Net skips from the down path).
* :class:`Decoder`: 3 x (2x upsampling + FS) from the latent mask back to full resolution,
  then a 1x1 convolution to 4 class logits (and a depth-to-space head when ``stem`` > 1),
  optionally corrected at full resolution from the input image (:class:`Refine`).

The latent mask F_0 (how the ground truth enters the latent space and comes back)
--------------------------------------------------------------------------------
The paper leaves this open. Here ``F_0`` is a FIXED, parameter-free projection of the
ground-truth class map (:func:`mask_to_latent`): the one-hot mask (4 channels, IGNORE pixels
contribute nothing) is average-pooled by the encoder's total downsampling factor
``D = 8 * stem`` (8 for the paper model: 256 -> 32), normalised by the fraction of valid pixels
in each cell, giving per-cell class fractions ``p`` in [0, 1] that sum to 1, and mapped to
``F_0 = latent_scale * (2 p - 1)`` (range [-1, 1] for the default scale 1, the range DDPM noise
schedules assume). So ``F_0`` is a ``4 x 32 x 32`` "soft, coarse segmentation".

Back: the decoder maps ``F_0`` (true during training, sampled at inference) to full-resolution
logits. It is trained with cross entropy both on the true ``F_0`` and on the denoiser's
one-step estimate ``F_0_hat`` from a noisy ``F_t`` (the path inference uses). The decoder
concatenates the encoder's pre-pool features at each scale (U-Net skips): the 8x-coarse
latent says WHAT is where, the skip features give the exact time-frequency edges.

Why fixed rather than learned: with a learned projection trained jointly, the diffusion loss
is minimised by collapsing F_0 to a constant (nothing left to denoise); a fixed projection keeps
the generative target well defined, interpretable (``(F_0 + 1) / 2`` is a coarse class-fraction
map usable as a prediction by itself) and costs nothing.

Notation: "C_k" below is the paper's convolution k x k followed by batch norm and ReLU.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

N_CLASSES = 4


@dataclass
class SpecDiffConfig:
    """Constructor arguments of :class:`SpecDiff` (saved in checkpoints and model cards)."""

    in_channels: int = 3
    n_classes: int = N_CLASSES
    #: Space-to-depth factor before the encoder (1 = paper; 2 or 4 = fast CPU variants).
    stem: int = 1
    enc_channels: tuple[int, int, int] = (32, 48, 96)
    unet_channels: tuple[int, int, int] = (32, 48, 96)
    #: Channels of the FF output and the q/k/v fusion at the lowest scale (paper: 128).
    ff_channels: int = 128
    #: Size of the sinusoidal time embedding t_emb (paper: 128).
    t_emb: int = 128
    #: Hidden width of MLP_1 in every TCS block.
    t_hidden: int = 256
    use_cp: bool = True
    use_ff: bool = True
    #: What the noise network outputs: "eps" (paper) or "x0" (the clean latent mask).
    prediction: str = "eps"
    latent_scale: float = 1.0
    #: Take a constant sample-rate plane as the input's last channel (``spectrogram.
    #: model_input``) and condition the encoder stages on it (:class:`RateFiLM`).
    rate_conditioning: bool = False
    #: Area-resize the input image by this factor before the encoder and bring the logits
    #: back to full size (bilinear): the network sees a 256 / input_pool spectrogram (the
    #: paper's Fig. 3c resolutions) and is scored at full resolution.
    input_pool: int = 1
    #: Width of the full-resolution :class:`Refine` after the decoder (0 = none, the paper).
    refine: int = 0

    @classmethod
    def from_dict(cls, d: dict) -> SpecDiffConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        d = dict(d)
        for key in ("enc_channels", "unet_channels"):
            if key in d:
                d[key] = tuple(int(v) for v in d[key])
        return cls(**d)

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("enc_channels", "unet_channels"):
            d[key] = list(d[key])
        return d

    @property
    def input_channels(self) -> int:
        """Channels of the model's input: the spectrogram's plus the rate plane, if any."""
        return self.in_channels + int(self.rate_conditioning)

    @property
    def downsample(self) -> int:
        """Total downsampling from the input image to the latent (8 * stem * input_pool)."""
        return 8 * self.stem * self.input_pool

    @property
    def min_size(self) -> int:
        """Input height/width must be a multiple of this (the noise net pools 3 more times)."""
        return 64 * self.stem * self.input_pool


class ConvBNAct(nn.Sequential):
    """The paper's C_k: k x k convolution, batch norm, ReLU."""

    def __init__(self, cin: int, cout: int, k: int = 3):
        super().__init__(
            nn.Conv2d(cin, cout, k, padding=k // 2, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class FS(nn.Module):
    """Feature selection (eq. 4): ``C_1(h * sigmoid(h))`` with ``h = C_3(C_3(x))``.

    The sigmoid is used as a self-gate on ``h`` (the paper: "acts as a self-attention gate to
    modulate the feature map").
    """

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = ConvBNAct(cin, cout, 3)
        self.conv2 = ConvBNAct(cout, cout, 3)
        self.proj = ConvBNAct(cout, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv2(self.conv1(x))
        return self.proj(h * torch.sigmoid(h))


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal positional embedding PE(t) of (possibly fractional) timesteps, ``(B, dim)``."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    args = t.float()[:, None] * freqs[None, :]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    if dim % 2 == 1:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=1)
    return emb


class TCS(nn.Module):
    """Time-conditional squeeze (eq. 6): ``C_3(H * Scale(t)) + Shift(t)``, ``H = C_3(x)``.

    ``[Scale, Shift] = MLP_2(MLP_1(PE(t)))`` split in halves of ``cout`` channels. MLP_2's bias
    starts at 1 for the scale half, so a fresh block starts as a plain conv-conv.
    """

    def __init__(self, cin: int, cout: int, t_emb: int, t_hidden: int):
        super().__init__()
        self.cout = cout
        self.conv_in = ConvBNAct(cin, cout, 3)
        self.conv_out = ConvBNAct(cout, cout, 3)
        self.mlp1 = nn.Sequential(nn.Linear(t_emb, t_hidden), nn.SiLU())
        self.mlp2 = nn.Linear(t_hidden, 2 * cout)
        with torch.no_grad():
            self.mlp2.weight.mul_(0.1)
            self.mlp2.bias.zero_()
            self.mlp2.bias[:cout] = 1.0

    def scale_shift(self, temb: Tensor) -> tuple[Tensor, Tensor]:
        m = self.mlp2(self.mlp1(temb))
        return m[:, : self.cout], m[:, self.cout :]

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        scale, shift = self.scale_shift(temb)
        h = self.conv_in(x)
        return self.conv_out(h * scale[:, :, None, None]) + shift[:, :, None, None]


class FF(nn.Module):
    """Frequency filter (eq. 10): ``C_1(<x - A_3(x), A_3(x)>)``, A_3 = 3x3 average pool, stride 1.

    The average pool pads by replication-free zero padding excluded from the mean
    (``count_include_pad=False``), so a constant map has no high-frequency part at the borders.
    """

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.pool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.fuse = ConvBNAct(2 * cin, cout, 1)

    def split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        low = self.pool(x)
        return x - low, low

    def forward(self, x: Tensor) -> Tensor:
        high, low = self.split(x)
        return self.fuse(torch.cat([high, low], dim=1))


def _up(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


class RateFiLM(nn.Module):
    """Per-channel scale and shift of the encoder's three stages from the sample rate.

    Not in the paper: one image geometry stands for column widths of 60-240 kHz, so the width
    of a carrier in pixels says nothing about its bandwidth unless the network is told the
    rate. Input: the rate plane's value ``log2(rate / 61.44 MS/s)`` (B,). The output layer
    starts at zero, so a model fine-tuned from an unconditioned one starts as that model.
    """

    def __init__(self, widths: tuple[int, int, int], hidden: int = 64):
        super().__init__()
        self.widths = [int(w) for w in widths]
        self.mlp = nn.Sequential(nn.Linear(1, hidden), nn.SiLU(),
                                 nn.Linear(hidden, 2 * sum(self.widths)))
        with torch.no_grad():
            self.mlp[2].weight.zero_()
            self.mlp[2].bias.zero_()

    def forward(self, rate: Tensor) -> list[tuple[Tensor, Tensor]]:
        m = self.mlp(rate.float()[:, None])
        out: list[tuple[Tensor, Tensor]] = []
        i = 0
        for w in self.widths:
            out.append((1.0 + m[:, i : i + w, None, None], m[:, i + w : i + 2 * w, None, None]))
            i += 2 * w
        return out


class Encoder(nn.Module):
    """Stem + 3 x (FS, 2x2 max pool) (eq. 5). Returns ``(F_c^0, skip1, skip2, skip3)``.

    With ``rate_conditioning`` the input's last channel is the constant rate plane: it is
    split off, and each stage's output is scaled and shifted by :class:`RateFiLM`.
    """

    __constants__ = ["rate_conditioning"]

    def __init__(self, in_channels: int, widths: tuple[int, int, int], stem: int = 1,
                 rate_conditioning: bool = False, input_pool: int = 1):
        super().__init__()
        self.resize = nn.AvgPool2d(input_pool) if input_pool > 1 else nn.Identity()
        self.stem = nn.PixelUnshuffle(stem) if stem > 1 else nn.Identity()
        c0 = in_channels * stem * stem
        self.fs1 = FS(c0, widths[0])
        self.fs2 = FS(widths[0], widths[1])
        self.fs3 = FS(widths[1], widths[2])
        self.pool = nn.MaxPool2d(2, 2)
        self.rate_conditioning = rate_conditioning
        if rate_conditioning:
            self.rate_film = RateFiLM(widths)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        x = self.resize(x)  # a constant rate plane stays constant
        if self.rate_conditioning:
            film = self.rate_film(x[:, -1, 0, 0])
            x = x[:, :-1]
            s1 = self.fs1(self.stem(x)) * film[0][0] + film[0][1]
            s2 = self.fs2(self.pool(s1)) * film[1][0] + film[1][1]
            s3 = self.fs3(self.pool(s2)) * film[2][0] + film[2][1]
        else:
            s1 = self.fs1(self.stem(x))
            s2 = self.fs2(self.pool(s1))
            s3 = self.fs3(self.pool(s2))
        return self.pool(s3), s1, s2, s3


class Refine(nn.Module):
    """A full-resolution residual correction of the logits (not in the paper).

    A stem-``s`` decoder writes each ``s x s`` block of logits from one feature vector of its
    coarse grid, so a one-row allocation edge or a one-column carrier edge inside a block is a
    guess. Two 3x3 ``C_3`` layers read the logits beside the input image at full resolution
    and add a correction. The output layer starts at zero, so a model fine-tuned from one
    without it starts as that model. Measured from the shipped model: no gain over a control
    fine-tuning without it (docs/TRAINING_LOG.md, the stage 9 candidate), so it ships off.
    """

    def __init__(self, in_channels: int, n_classes: int, width: int):
        super().__init__()
        self.body = nn.Sequential(ConvBNAct(in_channels + n_classes, width),
                                  ConvBNAct(width, width))
        self.out = nn.Conv2d(width, n_classes, 1)
        with torch.no_grad():
            self.out.weight.zero_()
            self.out.bias.zero_()

    def forward(self, logits: Tensor, x: Tensor) -> Tensor:
        return logits + self.out(self.body(torch.cat([logits, x], dim=1)))


class NoRefine(nn.Module):
    """:class:`Refine` turned off (``refine: 0``): the logits as they are."""

    def forward(self, logits: Tensor, x: Tensor) -> Tensor:
        return logits


class Decoder(nn.Module):
    """3 x (2x upsample, concat encoder skip, FS), a 1x1 conv to class logits, and the
    optional full-resolution :class:`Refine` that also reads the input image ``x``."""

    def __init__(
        self, latent_channels: int, widths: tuple[int, int, int], n_classes: int, stem: int = 1,
        input_pool: int = 1, input_channels: int = 3, refine: int = 0,
    ):
        super().__init__()
        self.fs3 = FS(latent_channels + widths[2], widths[2])
        self.fs2 = FS(widths[2] + widths[1], widths[1])
        self.fs1 = FS(widths[1] + widths[0], widths[0])
        self.head = nn.Conv2d(widths[0], n_classes * stem * stem, 1)
        self.unstem = nn.PixelShuffle(stem) if stem > 1 else nn.Identity()
        self.resize = (nn.Upsample(scale_factor=float(input_pool), mode="bilinear")
                       if input_pool > 1 else nn.Identity())
        self.refine = Refine(input_channels, n_classes, refine) if refine > 0 else NoRefine()

    def forward(self, f0: Tensor, s1: Tensor, s2: Tensor, s3: Tensor, x: Tensor) -> Tensor:
        h = self.fs3(torch.cat([_up(f0), s3], dim=1))
        h = self.fs2(torch.cat([_up(h), s2], dim=1))
        h = self.fs1(torch.cat([_up(h), s1], dim=1))
        return self.refine(self.resize(self.unstem(self.head(h))), x)


class NoiseNet(nn.Module):
    """The noise-prediction network eps_theta(F_t, t, F_c^0) (eq. 6-11).

    ``use_cp=False`` (ablation): no conditional path; ``F_c^0`` is concatenated to ``F_t`` at the
    input and the fusion uses ``F_z^3`` in place of ``F_c^3``. ``use_ff=False``: FF is replaced
    by a plain C_1 projection to ``ff_channels``.
    """

    # A TorchScript constant: the branch not taken is not compiled, so a model without the
    # conditional path (no ``cp*`` modules) exports.
    __constants__ = ["use_cp"]

    def __init__(
        self,
        latent_channels: int,
        cond_channels: int,
        widths: tuple[int, int, int],
        ff_channels: int,
        t_emb: int,
        t_hidden: int,
        use_cp: bool = True,
        use_ff: bool = True,
    ):
        super().__init__()
        w0, w1, w2 = widths
        self.t_emb = t_emb
        self.use_cp = use_cp
        cin = latent_channels if use_cp else latent_channels + cond_channels
        self.down1 = TCS(cin, w0, t_emb, t_hidden)
        self.down2 = TCS(w0, w1, t_emb, t_hidden)
        self.down3 = TCS(w1, w2, t_emb, t_hidden)
        self.pool = nn.MaxPool2d(2, 2)
        if use_cp:
            self.cp1 = TCS(cond_channels, w0, t_emb, t_hidden)
            self.cp_z1 = ConvBNAct(w0, w0, 1)
            self.cp2 = TCS(2 * w0, w1, t_emb, t_hidden)
            self.cp_z2 = ConvBNAct(w1, w1, 1)
            self.cp3 = TCS(2 * w1, w2, t_emb, t_hidden)
        if use_ff:
            self.ff_c = FF(w2, ff_channels)
            self.ff_z = FF(w2, ff_channels)
        else:
            self.ff_c = ConvBNAct(w2, ff_channels, 1)
            self.ff_z = ConvBNAct(w2, ff_channels, 1)
        self.q = ConvBNAct(w2, ff_channels, 3)
        self.k = ConvBNAct(w2, ff_channels, 3)
        self.v = ConvBNAct(w2, ff_channels, 3)
        self.fuse = TCS(ff_channels, w2, t_emb, t_hidden)
        self.up3 = TCS(w2 + w2, w1, t_emb, t_hidden)
        self.up2 = TCS(w1 + w1, w0, t_emb, t_hidden)
        self.up1 = TCS(w0 + w0, w0, t_emb, t_hidden)
        self.out = nn.Conv2d(w0, latent_channels, 1)

    def forward(self, ft: Tensor, t: Tensor, cond: Tensor) -> Tensor:
        temb = timestep_embedding(t, self.t_emb)
        x = ft if self.use_cp else torch.cat([ft, cond], dim=1)
        h1 = self.down1(x, temb)
        z1 = self.pool(h1)
        h2 = self.down2(z1, temb)
        z2 = self.pool(h2)
        h3 = self.down3(z2, temb)
        z3 = self.pool(h3)
        if self.use_cp:
            c1 = torch.cat([self.pool(self.cp1(cond, temb)), self.cp_z1(z1)], dim=1)
            c2 = torch.cat([self.pool(self.cp2(c1, temb)), self.cp_z2(z2)], dim=1)
            c3 = self.pool(self.cp3(c2, temb))
        else:
            c3 = z3
        # eq. 11: F_q = F_z^3 (noisy path), F_k = F_v = F_c^3 (condition).
        qk = (self.ff_c(c3) * self.k(c3)) * (self.ff_z(z3) * self.q(z3))
        h = self.fuse(torch.sigmoid(qk * self.v(c3)), temb)
        h = self.up3(torch.cat([_up(h), h3], dim=1), temb)
        h = self.up2(torch.cat([_up(h), h2], dim=1), temb)
        h = self.up1(torch.cat([_up(h), h1], dim=1), temb)
        return self.out(h)


def mask_to_latent(
    labels: Tensor, n_classes: int, factor: int, scale: float = 1.0, ignore_index: int = 255
) -> Tensor:
    """The latent mask ``F_0`` of a class map ``labels`` (B, H, W) int: see the module docstring.

    Returns float32 ``(B, n_classes, H / factor, W / factor)`` in ``[-scale, scale]``.
    """
    labels = labels.long()
    valid = labels != ignore_index
    safe = torch.where(valid, labels, torch.zeros_like(labels))
    onehot = F.one_hot(safe, n_classes).permute(0, 3, 1, 2).float()
    onehot = onehot * valid[:, None].float()
    frac = F.avg_pool2d(onehot, factor)
    cover = F.avg_pool2d(valid[:, None].float(), factor)
    p = frac / cover.clamp_min(1e-6)
    return scale * (2.0 * p - 1.0)


def latent_to_classes(f0: Tensor, scale: float = 1.0) -> Tensor:
    """Inverse of :func:`mask_to_latent` at latent resolution: per-cell class fractions."""
    return ((f0 / scale + 1.0) / 2.0).clamp(0.0, 1.0)


class SpecDiff(nn.Module):
    """Encoder + noise network + decoder; the sampler lives in ``pipeline.SpecDiffPipeline``."""

    def __init__(self, config: SpecDiffConfig | None = None, **kwargs):
        super().__init__()
        if config is None:
            config = SpecDiffConfig(**kwargs)
        elif kwargs:
            raise TypeError("pass either a SpecDiffConfig or keyword arguments")
        if config.prediction not in ("eps", "x0"):
            raise ValueError(f"prediction must be 'eps' or 'x0', got {config.prediction!r}")
        self.config = config
        c = config
        if c.input_pool < 1:
            raise ValueError(f"input_pool must be >= 1, got {c.input_pool}")
        self.encoder = Encoder(c.in_channels, c.enc_channels, c.stem, c.rate_conditioning,
                               c.input_pool)
        self.denoiser = NoiseNet(
            c.n_classes,
            c.enc_channels[2],
            c.unet_channels,
            c.ff_channels,
            c.t_emb,
            c.t_hidden,
            c.use_cp,
            c.use_ff,
        )
        self.decoder = Decoder(c.n_classes, c.enc_channels, c.n_classes, c.stem, c.input_pool,
                               c.input_channels, c.refine)

    def check_input(self, x: Tensor) -> None:
        m = self.config.min_size
        c = self.config.input_channels
        if x.dim() != 4 or x.shape[1] != c:
            raise ValueError(f"expected (B, {c}, H, W), got {tuple(x.shape)}")
        if x.shape[-1] % m or x.shape[-2] % m:
            raise ValueError(f"H and W must be multiples of {m}, got {tuple(x.shape[-2:])}")

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return self.encoder(x)

    def denoise(self, ft: Tensor, t: Tensor, cond: Tensor) -> Tensor:
        return self.denoiser(ft, t, cond)

    def decode(self, f0: Tensor, s1: Tensor, s2: Tensor, s3: Tensor, x: Tensor) -> Tensor:
        """Logits from the latent mask ``f0``, the encoder's skips and the input ``x``."""
        return self.decoder(f0, s1, s2, s3, x)

    def latent(self, labels: Tensor, ignore_index: int = 255) -> Tensor:
        c = self.config
        return mask_to_latent(labels, c.n_classes, c.downsample, c.latent_scale, ignore_index)

    def forward(self, x: Tensor, ft: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Encoder + one denoiser evaluation: ``(denoiser output, F_c^0)`` (for benchmarks)."""
        cond, _s1, _s2, _s3 = self.encoder(x)
        return self.denoiser(ft, t, cond), cond


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def parameter_report(model: SpecDiff) -> dict:
    return {
        "total": count_parameters(model),
        "encoder": count_parameters(model.encoder),
        "denoiser": count_parameters(model.denoiser),
        "decoder": count_parameters(model.decoder),
    }


# The tensors whose shape the stem sets: the first encoder convolution reads, and the head
# writes, ``stem * stem`` sub-pixel channels per image/class channel (PixelUnshuffle order
# ``c * s * s + i * s + j``): their channel axis, and how sub-pixels merge (below).
STEM_BOUND = {"encoder.fs1.conv1.0.weight": (1, "sum"), "decoder.head.weight": (0, "mean"),
              "decoder.head.bias": (0, "mean")}


def restem(key: str, tensor: Tensor, src: int, dst: int) -> Tensor:
    """The ``STEM_BOUND`` tensor ``key`` of a ``src``-stem network carried over to a ``dst``
    stem (``src`` a multiple of ``dst``), so a finer stem starts from a trained coarser one.

    A ``dst`` cell's sub-position ``(i, j)`` stands for the ``src`` cell's sub-positions
    ``(a * dst + i, b * dst + j)``: the first convolution sums their weights (it answers a
    flat patch as before), the head averages their logits."""
    if src % dst:
        raise ValueError(f"cannot carry a stem-{src} network over to stem {dst}: "
                         "the new stem must divide the old one")
    axis, merge = STEM_BOUND[key]
    r, shape = src // dst, list(tensor.shape)
    channels = shape[axis] // (src * src)
    t = tensor.reshape(shape[:axis] + [channels, r, dst, r, dst] + shape[axis + 1:])
    t = t.sum((axis + 1, axis + 3)) if merge == "sum" else t.mean((axis + 1, axis + 3))
    return t.reshape(shape[:axis] + [channels * dst * dst] + shape[axis + 1:])


# Width inference and the channel blocks of concatenated inputs, for ``widen``.
def widths_of(sd: dict[str, Tensor]) -> dict:
    """The ``enc_channels`` / ``unet_channels`` / ``ff_channels`` a SpecDiff state dict was
    built with, read from its convolutions' output widths."""
    def out(key: str) -> int:
        return int(sd[key].shape[0])

    return {
        "enc_channels": tuple(out(f"encoder.fs{i}.conv1.0.weight") for i in (1, 2, 3)),
        "unet_channels": tuple(out(f"denoiser.down{i}.conv_in.0.weight") for i in (1, 2, 3)),
        "ff_channels": out("denoiser.q.0.weight"),
    }


def _blocks(key: str, axis: int, size: int, c: SpecDiffConfig) -> list[int]:
    """The channel blocks along ``axis`` of tensor ``key`` of a network of config ``c``: one
    block, except where ``forward`` concatenates maps (input axis) or a layer's output is
    split (TCS scale/shift, RateFiLM's per-stage scales and shifts)."""
    e, u, n = c.enc_channels, c.unet_channels, c.n_classes
    if axis == 1:
        inputs = {
            "denoiser.down1.conv_in.0.weight": [n] if c.use_cp else [n, e[2]],
            "denoiser.cp2.conv_in.0.weight": [u[0], u[0]],
            "denoiser.cp3.conv_in.0.weight": [u[1], u[1]],
            "denoiser.ff_c.fuse.0.weight": [u[2], u[2]] if c.use_ff else [u[2]],
            "denoiser.ff_z.fuse.0.weight": [u[2], u[2]] if c.use_ff else [u[2]],
            "denoiser.up3.conv_in.0.weight": [u[2], u[2]],
            "denoiser.up2.conv_in.0.weight": [u[1], u[1]],
            "denoiser.up1.conv_in.0.weight": [u[0], u[0]],
            "decoder.fs3.conv1.0.weight": [n, e[2]],
            "decoder.fs2.conv1.0.weight": [e[2], e[1]],
            "decoder.fs1.conv1.0.weight": [e[1], e[0]],
        }
        return inputs.get(key, [size])
    if ".mlp2." in key:
        return [size // 2, size // 2]
    if key.startswith("encoder.rate_film.mlp.2."):
        return [w for w in e for _ in (0, 1)]
    return [size]


def widen(sd: dict[str, Tensor], model: SpecDiff) -> dict[str, Tensor]:
    """The weights ``sd`` of a narrower SpecDiff carried into ``model`` (Net2Net's idea, Chen et
    al., ICLR 2016): ``model`` then computes exactly what ``sd``'s network did.

    Each old tensor fills its old channels' place; a new channel keeps ``model``'s fresh
    weights where it is computed, and every layer that reads it starts with zero weights on
    it, so it changes nothing until training moves those weights (their gradients are not
    zero: the new channels' activations are not). Only widths may differ, and only grow.
    Tensors ``sd`` lacks are left out of the result."""
    old = replace(model.config, **widths_of(sd))
    new = model.config
    for name in ("enc_channels", "unet_channels"):
        if any(a > b for a, b in zip(getattr(old, name), getattr(new, name))):
            raise ValueError(f"cannot narrow {name} {getattr(old, name)} to "
                             f"{getattr(new, name)}: widen only grows a network")
    if old.ff_channels > new.ff_channels:
        raise ValueError(f"cannot narrow ff_channels {old.ff_channels} to {new.ff_channels}")
    out = {}
    for key, fresh in model.state_dict().items():
        if key not in sd:
            continue
        src = sd[key]
        if src.shape == fresh.shape or src.dim() == 0:
            out[key] = src.clone()
            continue
        t = fresh.clone()
        index = []
        for axis in range(min(src.dim(), 2)):
            was = _blocks(key, axis, src.shape[axis], old)
            now = _blocks(key, axis, t.shape[axis], new)
            if len(was) != len(now) or sum(was) != src.shape[axis]:
                raise ValueError(f"{key}: cannot map channel blocks {was} onto {now}")
            starts = [sum(now[:i]) for i in range(len(now))]
            index.append(torch.cat([torch.arange(w) + s for w, s in zip(was, starts)]))
        if src.dim() > 1:
            added = torch.ones(t.shape[1], dtype=torch.bool)
            added[index[1]] = False
            t[:, added] = 0  # readers of new channels start blind to them
        if src.dim() == 1:
            t[index[0]] = src
        else:
            t[index[0][:, None], index[1][None, :]] = src
        out[key] = t
    return out


__all__ = [
    "FF",
    "FS",
    "TCS",
    "Decoder",
    "Encoder",
    "NoiseNet",
    "SpecDiff",
    "STEM_BOUND",
    "SpecDiffConfig",
    "count_parameters",
    "latent_to_classes",
    "mask_to_latent",
    "parameter_report",
    "restem",
    "timestep_embedding",
    "widen",
    "widths_of",
]

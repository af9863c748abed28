# SPDX-License-Identifier: GPL-3.0-or-later
"""Training of SpecDiff: hybrid loss, EMA, validation, resumable checkpoints, DDP.

Loss (per batch; ``t`` uniform in ``0..T-1`` except a ``t_max_fraction`` share of the batch
at the sampler's first timestep ``t_max`` and a ``recycle_fraction`` share whose ``F_t`` is
built from the model's own first estimate instead of ``F_0`` (see :func:`compute_losses`),
``eps ~ N(0, I)``)::

    F_0 = mask_to_latent(labels)                 (fixed projection, see specdiff.py)
    F_t = alpha_t F_0 + sigma_t eps              (eq. 7)
    out = denoiser(F_t, t, F_c^0)
    L_diff = MSE(out, eps)        (prediction "eps", the paper)  or  MSE(out, F_0)  ("x0")
    F_0_hat = clamp(x0 estimate from out)         (the path the sampler uses)
    L_seg = CE(decoder(F_0), labels) ;  L_seg_pred = CE(decoder(F_0_hat), labels)
    L = lambda_diff L_diff + lambda_seg L_seg + lambda_seg_pred L_seg_pred
        + lambda_lovasz (Lovasz(decoder(F_0)) + Lovasz(decoder(F_0_hat)))

``lambda_lovasz`` (default 0) adds the Lovasz-softmax loss (:func:`lovasz_softmax`), a
surrogate of 1 - IoU, because the model is judged by mean IoU and CE is not.
``loss.teacher`` (a trained model, exported or a checkpoint) adds knowledge distillation:
``lambda_distill`` (default 1) times the cross entropy of the sampler path's class
probabilities against the teacher's on the same (flipped) frames (:func:`distillation_loss`),
so a wider or flip-averaged model's answers can be taught to a cheaper network; class
balanced as the CE below (``distill_balanced``, default true), on the batch items at t_max
(``distill_items``: ``t_max``, the default, or ``all``), the teacher's probabilities
sharpened by ``distill_temperature`` (default 1: as the teacher gives them; below 1 they move
towards its argmax, :func:`sharpen`).
CE ignores IGNORE (255) pixels and can be class balanced (``class_weights: auto``: weights
``1 / sqrt(pixel frequency)`` measured on the first training frames, normalised to mean 1),
because noise dominates the pixels.

Checkpoints ``{step, model, optimizer, ema, config, version, ...}`` are written atomically to
``RUN/checkpoint.pt`` (and ``RUN/best.pt`` on the best validation mean IoU) and loaded with
``weights_only=True``. ``RUN/metrics.jsonl`` has one JSON object per logged step and per
validation; ``RUN/train.log`` the human-readable log. Under ``torchrun`` the loop runs DDP
(NCCL on CUDA, gloo on CPU); single-process runs need nothing.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gr_specdiff import IGNORE, __version__
from gr_specdiff.model import export
from gr_specdiff.model.diffusion import NoiseSchedule
from gr_specdiff.model.factory import (
    build_model,
    build_pipeline,
    diffusion_args,
    load_config,
    model_arch,
)
from gr_specdiff.model.pipeline import check_flips
from gr_specdiff.model.specdiff import (
    STEM_BOUND,
    SpecDiff,
    count_parameters,
    restem,
    widen,
    widths_of,
)
from gr_specdiff.spectrogram import mirror_frequency

log = logging.getLogger("gr_specdiff.train")

CHECKPOINT_VERSION = 1


# ----------------------------------------------------------------------------- data


class SyntheticRectangles(torch.utils.data.Dataset):
    """Random rectangles of classes 1..3 on noise; each class has its own feature signature.

    For tests and smoke runs (``data.dir: synthetic``). Deterministic per index and seed.
    Yields ``(features float32 (3, S, S), labels int64 (S, S), index)`` like SpectrumDataset.
    """

    def __init__(self, n: int = 64, size: int = 64, seed: int = 0, max_rects: int = 3):
        self.n, self.size, self.seed, self.max_rects = n, size, seed, max_rects

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        rng = np.random.default_rng([self.seed, i])
        s = self.size
        feats = rng.random((3, s, s), dtype=np.float32) * 0.25
        labels = np.zeros((s, s), dtype=np.int64)
        for _ in range(rng.integers(1, self.max_rects + 1)):
            c = int(rng.integers(1, 4))
            h, w = rng.integers(s // 8, s // 2, size=2)
            r0, c0 = rng.integers(0, s - h), rng.integers(0, s - w)
            labels[r0 : r0 + h, c0 : c0 + w] = c
            feats[c - 1, r0 : r0 + h, c0 : c0 + w] += 0.6
        return torch.from_numpy(np.clip(feats, 0, 1)), torch.from_numpy(labels), i

    def meta(self, i: int) -> dict:
        # Two rates in turn, so a rate-conditioned model has something to be conditioned on.
        return {"snr_db": 10.0, "sample_rate": (61.44e6, 20e6)[int(i) % 2]}


class GeneratedScenes(torch.utils.data.Dataset):
    """On-the-fly scenes from ``gr_specdiff.scene.generate`` (``data.dir: generate``).

    Frame ``i`` is drawn from ``default_rng([seed, i])`` at one of ``sample_rates``: a fresh,
    deterministic scene per index, so ``n`` indices are ``n`` distinct frames and nothing is
    stored. About 0.5 s of CPU per frame: meant for machines with many data-loader workers.
    """

    def __init__(self, n: int, seed: int = 0, sample_rates=(61.44e6,), frame_seconds=0.04,
                 preset: str = "realistic"):
        self.n, self.seed = int(n), int(seed)
        self.sample_rates = [float(r) for r in sample_rates]
        self.frame_seconds, self.preset = float(frame_seconds), preset
        self.manifest = {"generator": "on-the-fly", "seed": self.seed, "preset": preset,
                         "sample_rates": self.sample_rates, "frame_seconds": self.frame_seconds}
        self._meta: dict[int, dict] = {}

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        from gr_specdiff.scene import generate

        rng = np.random.default_rng([self.seed, int(i)])
        rate = self.sample_rates[int(rng.integers(0, len(self.sample_rates)))]
        scene = generate(rng, rate, self.frame_seconds, None, self.preset)
        self._meta[int(i)] = dict(scene.meta)
        feats = torch.from_numpy(np.asarray(scene.features(), np.float32))
        return feats, torch.from_numpy(scene.class_map.astype(np.int64)), int(i)

    def meta(self, i: int) -> dict:
        return self._meta.get(int(i), {})


def open_dataset(path: str | Path, image_size: int = 256, n_synthetic: int = 256, seed: int = 0,
                 data_cfg: dict | None = None, rate_channel: bool = False):
    """``synthetic`` -> :class:`SyntheticRectangles`; ``generate`` -> :class:`GeneratedScenes`
    (``data_cfg``: ``frames``, ``sample_rates``, ``frame_seconds``, ``preset``); else a
    ``gr_specdiff.data.SpectrumDataset`` directory, or a list of them read as one
    (``ConcatFrames``). ``rate_channel``: frames as a rate-conditioned model takes them
    (``gr_specdiff.data.WithRateChannel``)."""
    from gr_specdiff.data import ConcatFrames, SpectrumDataset, WithRateChannel

    if isinstance(path, (list, tuple)):
        ds = ConcatFrames([open_dataset(p, image_size) for p in path])
    elif str(path) == "synthetic":
        ds = SyntheticRectangles(n_synthetic, image_size, seed)
    elif str(path) == "generate":
        d = data_cfg or {}
        ds = GeneratedScenes(int(d.get("frames", 100_000)), seed,
                             d.get("sample_rates", [61.44e6]),
                             float(d.get("frame_seconds", 0.04)), d.get("preset", "realistic"))
    else:
        p = Path(path)
        if not (p / "manifest.yaml").exists():
            raise FileNotFoundError(
                f"dataset {p} has no manifest.yaml; generate one with `specdiff datagen` "
                "or use --data synthetic"
            )
        ds = SpectrumDataset(str(p))
    return WithRateChannel(ds) if rate_channel else ds


def dataset_info(ds) -> dict:
    """What a model card should know about the training data (best effort)."""
    info: dict = {"frames": len(ds)}
    manifest = getattr(ds, "manifest", None)
    if isinstance(manifest, dict):
        for key in ("generator_version", "version", "seed", "config"):
            if key in manifest:
                info[key] = manifest[key]
        rates = manifest.get("sample_rates") or (manifest.get("config") or {}).get("sample_rates")
        if rates:
            info["sample_rates"] = [float(r) for r in np.atleast_1d(rates)]
        fs = manifest.get("frame_seconds") or (manifest.get("config") or {}).get("frame_seconds")
        if fs:
            info["frame_seconds"] = float(fs)
    root = getattr(ds, "root", None) or getattr(ds, "path", None)
    if root is not None:
        info["dir"] = [str(r) for r in root] if isinstance(root, list) else str(root)
    return info


def random_flips(x: Tensor, y: Tensor, flips, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Each frame of the batch (features ``x`` (B, C, H, W), labels ``y`` (B, H, W)) flipped
    with probability 1/2 per flip in ``flips`` (``data.flips``: ``pipeline.FLIPS``), image and
    labels alike: more views of the same scenes, the frequency mirror being exactly a receiver
    with spectral inversion."""
    for flip in check_flips(flips):
        pick = torch.rand(x.shape[0], generator=generator) < 0.5
        if not bool(pick.any()):
            continue
        if flip == "frequency":
            x[pick], y[pick] = mirror_frequency(x[pick]), mirror_frequency(y[pick])
        else:
            x[pick], y[pick] = x[pick].flip(-2), y[pick].flip(-2)
    return x, y


def split_indices(n: int, val_fraction: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """Deterministic train/validation split of ``range(n)`` (validation = a seeded sample)."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    n_val = max(1, int(round(n * val_fraction))) if n > 1 else 0
    return sorted(perm[n_val:].tolist()), sorted(perm[:n_val].tolist())


def class_weights_from(ds, indices, n_classes: int = 4, frames: int = 32) -> Tensor:
    """``1/sqrt(freq)`` class weights (mean 1) from up to ``frames`` frames."""
    counts = np.ones(n_classes, dtype=np.float64)
    for i in indices[:frames]:
        lab = np.asarray(ds[i][1]).ravel()
        lab = lab[lab != IGNORE]
        counts += np.bincount(lab, minlength=n_classes)[:n_classes]
    w = 1.0 / np.sqrt(counts / counts.sum())
    w = np.clip(w / w.mean(), 0.05, 20.0)
    return torch.tensor(w / w.mean(), dtype=torch.float32)


# ----------------------------------------------------------------------------- loss


def _lovasz_bin_weights(fn: Tensor, fp: Tensor, n_fg: float) -> tuple[Tensor, Tensor]:
    """Per error bin (largest errors first), the Lovasz weight of one of its background
    (false-positive) and one of its foreground (false-negative) pixels, from the bins' pixel
    counts ``fn`` and ``fp`` (float64) and the class's pixel count ``n_fg``."""
    def jaccard(f, q):  # Jaccard loss with f foreground and q background pixels wrong
        return 1.0 - (n_fg - f) / (n_fg + q)

    fn_after, fp_after = fn.cumsum(0), fp.cumsum(0)
    fn_before, fp_before = fn_after - fn, fp_after - fp
    step = jaccard(fn_after, fp_after) - jaccard(fn_before, fp_before)
    fn_mid, fp_mid = fn_before + fn / 2, fp_before + fp / 2
    d_fn = 1.0 / (n_fg + fp_mid)
    d_fp = (n_fg - fn_mid) / (n_fg + fp_mid) ** 2
    share = fn * d_fn + fp * d_fp
    scale = torch.where(share > 0, step / share.clamp_min(1e-300), 0.0)
    return scale * d_fp, scale * d_fn


def lovasz_softmax(logits: Tensor, labels: Tensor, ignore_index: int = IGNORE,
                   bins: int = 1024) -> Tensor:
    """Lovasz-softmax loss (Berman, Rannen Triki and Blaschko, CVPR 2018) over the whole batch.

    Per class ``c``, the Lovasz extension of the Jaccard loss ``1 - IoU_c`` at the pixel
    errors ``e = |[y = c] - p_c|``: the errors sorted in decreasing order, each weighted by
    how much the Jaccard loss grows when its pixel joins the set of larger errors; the mean
    over the classes present. Pooled over the batch, not per image, because the metric pools
    its confusion over the test set.

    The sort (it made a training step three times slower here) is replaced by ``bins`` error
    bins: a bin's pixels share its Jaccard increment, split between its false negatives and
    false positives in the ratio of the Jaccard loss's partial derivatives in each at the
    bin's midpoint. Exact for confident one-hot predictions (two bins: the mean of
    ``1 - IoU_c``); tests hold it to the sorted definition. Weights in float64, loss float32.
    """
    probs = logits.float().softmax(1)
    keep = labels != ignore_index
    ignored = ~keep
    losses = []
    for c in range(logits.shape[1]):
        fg = (labels == c) & keep
        n_fg = float(fg.sum())
        if n_fg == 0:
            continue
        p = probs[:, c]
        errors = torch.where(fg, 1.0 - p, p)
        with torch.no_grad():
            # Bin code: 0..bins-1 background, bins..2 bins-1 foreground (bin 0 of each holds
            # the largest errors), 2 bins for IGNORE pixels (weight 0).
            code = (bins - 1) - (errors * bins).long().clamp_(0, bins - 1)
            code += bins * fg
            code[ignored] = 2 * bins
            counts = torch.bincount(code.reshape(-1), minlength=2 * bins + 1).double()
            w_fp, w_fn = _lovasz_bin_weights(counts[bins:2 * bins], counts[:bins], n_fg)
            table = torch.cat([w_fp, w_fn, w_fp.new_zeros(1)]).float()
        losses.append((errors * table[code]).sum())
    if not losses:  # every pixel IGNORE
        return logits.sum() * 0.0
    return torch.stack(losses).mean()


def compute_losses(
    model: SpecDiff,
    schedule: NoiseSchedule,
    x: Tensor,
    labels: Tensor,
    loss_cfg: dict,
    class_weights: Tensor | None = None,
    clip: float = 1.0,
    generator: torch.Generator | None = None,
    teacher: Callable[[Tensor], Tensor] | None = None,
) -> tuple[Tensor, dict]:
    """The hybrid loss of the module docstring; returns ``(total, {name: float})``.
    ``teacher`` (frames -> class probabilities, e.g. ``load_teacher(...).probabilities``) adds
    the distillation term; it is run only on the items it teaches.

    For a baseline (any logits network) it is the (weighted) cross entropy, plus the Lovasz
    term when ``lambda_lovasz`` > 0.
    """
    labels = labels.long()
    w = class_weights.to(x.device) if class_weights is not None else None
    lam_lovasz = float(loss_cfg.get("lambda_lovasz", 0.0))
    if not isinstance(model, SpecDiff):
        logits = model(x)
        total = F.cross_entropy(logits, labels, weight=w, ignore_index=IGNORE)
        parts = {"seg": float(total.detach())}
        if lam_lovasz > 0:
            l_lov = lovasz_softmax(logits, labels)
            total = total + lam_lovasz * l_lov
            parts["lovasz"] = float(l_lov.detach())
        total = _add_distillation(total, parts, logits, teacher, x, loss_cfg, labels, w)
        parts["total"] = float(total.detach())
        return total, parts
    c = model.config
    cond, s1, s2, s3 = model.encode(x)
    f0 = model.latent(labels, IGNORE)
    b = x.shape[0]
    t = torch.randint(0, schedule.T, (b,), generator=generator)
    # The first sampler step (t_max) is the only one a K=1 sampler takes; uniform t gives it
    # ~1/T of the training signal, so a fixed share of each batch can be spent there.
    n_first = round(float(loss_cfg.get("t_max_fraction", 0.0)) * b)
    t[:n_first] = schedule.t_max
    # Recycling: a K > 1 sampler's later steps see F_t = alpha_t F_0_hat + sigma_t z built
    # from its own first estimate F_0_hat, never from the truth. This share of the batch is
    # trained on exactly that input, to refine the estimate: at t uniform in 1..t_max-1, or
    # at the later timesteps of a K = ``recycle_steps`` sampler.
    n_rec = min(round(float(loss_cfg.get("recycle_fraction", 0.0)) * b), b - n_first)
    rec = slice(n_first, n_first + n_rec)
    if n_rec:
        k = int(loss_cfg.get("recycle_steps", 0))
        if k >= 2:
            later = torch.from_numpy(schedule.timesteps(k)[1:])
            t[rec] = later[torch.randint(0, len(later), (n_rec,), generator=generator)]
        else:
            t[rec] = torch.randint(1, schedule.t_max, (n_rec,), generator=generator)
    t = t.to(x.device)
    eps = torch.randn(f0.shape, generator=generator).to(x.device)
    lim = clip * c.latent_scale
    base = f0
    if n_rec:
        base = f0.clone()
        base[rec] = _first_estimate(model, schedule, eps[rec], cond[rec].detach(), lim)
    ft, alpha, sigma = schedule.add_noise(base, t, eps)
    out = model.denoise(ft, t.float(), cond)
    if c.prediction == "x0":
        l_diff = F.mse_loss(out, f0)
        f0_hat = out
    else:
        # The target is the noise that would turn the *truth* into F_t; for recycled items
        # F_t was built from the estimate, so it is (F_t - alpha F_0) / sigma, not eps.
        target = eps if not n_rec else (ft - alpha * f0) / sigma
        l_diff = F.mse_loss(out, target)
        f0_hat = (ft - sigma * out) / alpha
    if lim > 0:
        f0_hat = f0_hat.clamp(-lim, lim)
    lam_diff = float(loss_cfg.get("lambda_diff", 1.0))
    lam_seg = float(loss_cfg.get("lambda_seg", 1.0))
    lam_pred = float(loss_cfg.get("lambda_seg_pred", 1.0))
    total = lam_diff * l_diff
    parts = {"diff": float(l_diff.detach())}
    if lam_seg > 0 or lam_pred > 0:
        # One decoder pass over [F_0 ; F_0_hat] (batch norm sees both).
        both = torch.cat([f0, f0_hat], dim=0)
        logits = model.decode(both, *(s.repeat(2, 1, 1, 1) for s in (s1, s2, s3, x)))
        l_seg = F.cross_entropy(logits[:b], labels, weight=w, ignore_index=IGNORE)
        l_pred = F.cross_entropy(logits[b:], labels, weight=w, ignore_index=IGNORE)
        total = total + lam_seg * l_seg + lam_pred * l_pred
        parts["seg"] = float(l_seg.detach())
        parts["seg_pred"] = float(l_pred.detach())
        if lam_lovasz > 0:
            l_lov = lovasz_softmax(logits[:b], labels) + lovasz_softmax(logits[b:], labels)
            total = total + lam_lovasz * l_lov
            parts["lovasz"] = float(l_lov.detach())
        # The teacher teaches what inference returns: the sampler path's answer from the
        # K = 1 step at t_max. At smaller t, F_t is close to the truth's latent, and teaching
        # the decoder the teacher's mistakes there would teach it to copy them.
        # (``distill_items: all`` teaches every item, as the first trials did.)
        if teacher is not None:
            taught = t == schedule.t_max
            if loss_cfg.get("distill_items", "t_max") == "all":
                taught = torch.ones_like(taught)
            total = _add_distillation(total, parts, logits[b:][taught], teacher, x[taught],
                                      loss_cfg, labels[taught], w)
    parts["total"] = float(total.detach())
    return total, parts


def distillation_loss(logits: Tensor, teacher_probs: Tensor, labels: Tensor | None = None,
                      weight: Tensor | None = None) -> Tensor:
    """Per-pixel cross entropy of ``softmax(logits)`` against the teacher's class
    probabilities (the KL divergence from the teacher plus its entropy, a constant), averaged
    over the pixels, or with ``weight`` (per class) and ``labels`` weighted by each pixel's
    true class as the hard loss is (IGNORE pixels weigh nothing), so that the noise pixels
    (70 %) do not dominate the term as they would the unweighted CE."""
    ce = -(teacher_probs * F.log_softmax(logits.float(), dim=1)).sum(dim=1)
    if weight is None:
        return ce.mean()
    known = labels != IGNORE
    px = torch.zeros_like(ce)
    px[known] = weight.to(ce.device)[labels[known]]
    return (px * ce).sum() / px.sum().clamp_min(1e-12)


def sharpen(probs: Tensor, temperature: float) -> Tensor:
    """Class probabilities (dim 1) raised to ``1 / temperature`` and renormalised: the
    softmax of the log-probabilities divided by the temperature. 1 leaves them as they are,
    below 1 moves every pixel towards its argmax (0 would be the one-hot argmax)."""
    if temperature == 1.0:
        return probs
    return torch.softmax(torch.log(probs.clamp_min(1e-12)) / temperature, dim=1)


def _add_distillation(total: Tensor, parts: dict, logits: Tensor,
                      teacher: Callable[[Tensor], Tensor] | None, x: Tensor, loss_cfg: dict,
                      labels: Tensor, weight: Tensor | None) -> Tensor:
    """``total`` plus the distillation term of ``logits`` (the student's answers for frames
    ``x``) against the teacher's; the teacher is asked only here, without gradient and at
    full precision, so no teacher or ``lambda_distill: 0`` costs nothing."""
    lam = float(loss_cfg.get("lambda_distill", 1.0))
    if teacher is None or lam <= 0:
        return total
    with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
        teacher_probs = sharpen(teacher(x.float()),
                                float(loss_cfg.get("distill_temperature", 1.0)))
    balanced = loss_cfg.get("distill_balanced", True) and weight is not None
    l_kd = distillation_loss(logits, teacher_probs, labels, weight if balanced else None)
    parts["distill"] = float(l_kd.detach())
    return total + lam * l_kd


def load_teacher(path: str | Path, device, image_size: int = 256) -> nn.Module:
    """A trained model as a frozen inference pipeline with ``.probabilities(x)``: an exported
    model (``.ts``/``.yaml``, with its card's sampler steps and flips) or a training
    checkpoint (``.pt``, its EMA weights and its config's sampler)."""
    p = Path(path)
    if not p.exists() and not p.with_suffix(".yaml").exists():
        raise FileNotFoundError(f"loss.teacher: no model at {path}; give an exported model "
                                "(.yaml/.ts) or a training checkpoint (.pt)")
    if p.suffix == ".pt":
        cfg, steps, flips = load_checkpoint(p)["config"], None, ()
    else:
        from gr_specdiff.model.export import load_model

        card = load_model(p).card
        cfg = card["training"]["config"]
        steps, flips = card["sampler"]["steps"], card["sampler"].get("flips") or ()
    model = build_model(cfg)
    model.load_state_dict(initial_weights(p, model))
    pipe = build_pipeline(model, cfg, steps=steps, image_size=image_size, flips=flips)
    pipe = pipe.to(device).eval()
    for q in pipe.parameters():
        q.requires_grad_(False)
    return pipe


def _first_estimate(model: SpecDiff, schedule: NoiseSchedule, z: Tensor, cond: Tensor,
                    lim: float) -> Tensor:
    """The K = 1 sampler's clean latent from noise ``z``, computed as inference does it
    (batch norm on its running statistics, which this pass leaves untouched), no gradient."""
    net = model.denoiser
    was = net.training
    net.eval()
    try:
        with torch.no_grad():
            t = torch.full((z.shape[0],), float(schedule.t_max), device=z.device)
            out = net(z, t, cond)
            if model.config.prediction != "x0":
                tm = schedule.t_max
                out = (z - float(schedule.sigma64[tm]) * out) / float(schedule.alpha64[tm])
            return out.clamp(-lim, lim) if lim > 0 else out
    finally:
        net.train(was)


class HybridLoss(nn.Module):
    """``forward(x, labels) -> (loss, parts)``: the module DDP wraps (gradient sync)."""

    def __init__(self, model: SpecDiff, schedule: NoiseSchedule, loss_cfg: dict,
                 class_weights: Tensor | None = None, clip: float = 1.0):
        super().__init__()
        self.model = model
        self.schedule = schedule
        self.loss_cfg = loss_cfg
        self.class_weights = class_weights
        self.clip = clip

    def forward(self, x: Tensor, labels: Tensor,
                teacher: Callable[[Tensor], Tensor] | None = None):
        return compute_losses(self.model, self.schedule, x, labels, self.loss_cfg,
                              self.class_weights, self.clip, teacher=teacher)


# ----------------------------------------------------------------------------- EMA, ckpt


class EMA:
    """Exponential moving average of a model's parameters and buffers (float copies)."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = float(decay)
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for k, v in model.state_dict().items():
            s = self.shadow[k]
            if v.dtype.is_floating_point:
                s.mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                s.copy_(v)

    def state_dict(self) -> dict:
        return self.shadow

    def load_state_dict(self, sd: dict) -> None:
        for k, v in sd.items():
            self.shadow[k].copy_(v)

    def copy_to(self, model: nn.Module) -> None:
        model.load_state_dict(self.shadow)


def save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _provenance(path: str | Path) -> dict:
    """Where a run's initial weights came from: path, step/sha256 (for the model card)."""
    p = Path(path)
    if p.suffix == ".pt":
        return {"path": str(p), "step": int(load_checkpoint(p).get("step", 0))}
    from gr_specdiff.model.export import sha256_file

    ts = p.with_suffix(".ts")
    return {"path": str(ts), "sha256": sha256_file(ts)}


def initial_weights(path: str | Path, model: nn.Module) -> dict:
    """``model``'s state dict taken from a training checkpoint (its EMA weights) or from an
    exported TorchScript SpecDiff (``.ts``/``.yaml``, with or without test-time flips; its
    encoder/denoiser/decoder are the model's own submodules). A SpecDiff of a coarser stem
    fits a finer one (``restem``), and a narrower one a wider one (``widen``): the rest of the
    network is the same. Raises ValueError naming what does not fit."""
    p = Path(path)
    if p.suffix == ".pt":
        sd = load_checkpoint(p)["ema"]
    else:
        from gr_specdiff.model.export import load_model

        sd = load_model(p).module.state_dict()
        if all(k.startswith("pipe.") for k in sd):  # a flip-averaged export wraps the pipeline
            sd = {k.removeprefix("pipe."): v for k, v in sd.items()}
    want = model.state_dict()
    if isinstance(model, SpecDiff) and all(k in sd for k in STEM_BOUND):
        dst = model.config.stem
        src = math.isqrt(sd["decoder.head.bias"].numel() // model.config.n_classes)
        if src != dst:
            sd = {**sd, **{k: restem(k, sd[k], src, dst) for k in STEM_BOUND}}
        widths = {k: getattr(model.config, k) for k in ("enc_channels", "unet_channels",
                                                        "ff_channels")}
        if widths_of(sd) != widths:
            sd = widen(sd, model)
    # Rate conditioning or a refinement added to a model without them keeps its fresh
    # weights: their output layers start at zero, so the new model starts as the one it is
    # initialised from.
    missing = [k for k in want if k not in sd
               and ".rate_film." not in k and ".refine." not in k]
    wrong = [k for k in want if k in sd and sd[k].shape != want[k].shape]
    if missing or wrong:
        raise ValueError(
            f"{path} does not fit this config's model: {len(missing)} missing tensors "
            f"{missing[:3]}, {len(wrong)} of another shape {wrong[:3]}; train with the config "
            "the model was built from (its card's model section)")
    return {k: sd.get(k, want[k]) for k in want}


def average_weights(paths, model: nn.Module) -> dict:
    """The element-wise mean of several runs' weights for ``model`` (each a checkpoint's EMA
    weights or an exported model, as ``initial_weights`` reads them): a uniform "model soup"
    (Wortsman et al., ICML 2022). It only makes sense for fine-tunings of one parent, which
    stay in one basin of the loss. Integer buffers (BatchNorm's batch counters) are the first
    run's; running means and variances are averaged like every float tensor."""
    if not paths:
        raise ValueError("average_weights needs at least one checkpoint or model")
    sds = [initial_weights(p, model) for p in paths]
    return {k: torch.stack([sd[k].float() for sd in sds]).mean(0).to(v.dtype)
            if v.is_floating_point() else v for k, v in sds[0].items()}


# ----------------------------------------------------------------------------- validation


@torch.no_grad()
def validate(model: nn.Module, cfg: dict, ds, indices, device, batch: int = 8) -> dict:
    """Mean accuracy / IoU of the full sampler pipeline (config steps) on ``ds[indices]``."""
    from gr_specdiff.evaluate import confusion_matrix, metrics_from_confusion

    if not indices:
        return {}
    x0 = ds[indices[0]][0]
    size = int(x0.shape[-1])
    was = model.training
    model.eval()
    pipe = build_pipeline(model, cfg, image_size=size).to(device).eval()
    cm = np.zeros((4, 4), dtype=np.int64)
    for s in range(0, len(indices), batch):
        items = [ds[i] for i in indices[s : s + batch]]
        x = torch.stack([torch.as_tensor(it[0]).float() for it in items]).to(device)
        y = np.stack([np.asarray(it[1]) for it in items])
        cls, _ = pipe(x)
        cm += confusion_matrix(cls.cpu().numpy(), y)
    model.train(was)
    m = metrics_from_confusion(cm)
    return {k: m[k] for k in ("mean_accuracy", "mean_iou", "global_accuracy", "per_class_iou")}


# ----------------------------------------------------------------------------- loop


def cpu_bfloat16(requested, dev: torch.device) -> bool:
    """Whether ``train.cpu_bf16`` runs CPU steps under bfloat16 autocast.

    On a CPU with native bfloat16 (AVX512-BF16, AMX) convolutions run about 1.5x faster in a
    training step (docs/BENCHMARKS.md); weights, optimizer and batch norm stay float32. Where
    the CPU lacks it, autocast would emulate bfloat16 and run slower than float32, so the
    run stays float32 and says so. Not used on CUDA, where ``train.amp`` (float16) applies."""
    if not isinstance(requested, bool):
        raise ValueError(f"train.cpu_bf16: {requested!r}; use true or false")
    if not requested or dev.type != "cpu":
        return False
    return export.resolve_precision("bfloat16", dev) == "bfloat16"  # warns when it falls back


def _lr_at(step: int, base: float, warmup: int, total: int) -> float:
    if step < warmup:
        return base * (step + 1) / max(warmup, 1)
    p = (step - warmup) / max(total - warmup, 1)
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(p, 1.0))))


def _setup_logging(run: Path, is_main: bool) -> None:
    if not is_main:
        return
    for old in [h for h in log.handlers if getattr(h, "_specdiff_run", False)]:
        log.removeHandler(old)  # a previous train() in this process (compare_budget.py)
        old.close()
    handler = logging.FileHandler(run / "train.log")
    handler._specdiff_run = True
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def _dist_init() -> tuple[bool, int, int, int]:
    """``(distributed, rank, local_rank, world)`` from torchrun's environment."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        import torch.distributed as dist

        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        return True, dist.get_rank(), int(os.environ.get("LOCAL_RANK", 0)), dist.get_world_size()
    return False, 0, 0, 1


def train(
    config: str | Path | dict,
    data: str | None = None,
    out: str | Path = "runs/specdiff",
    steps: int | None = None,
    resume: bool = False,
    device: str = "auto",
    progress: bool = True,
    threads: int | None = None,
    stop_at: int | None = None,
    init_from: str | Path | None = None,
    max_minutes: float | None = None,
) -> dict:
    """Train; returns the last validation metrics (plus ``step``, ``run``).

    ``stop_at`` ends this invocation after that optimizer step (validated and checkpointed)
    while the learning-rate schedule still spans ``steps``: equal-budget comparisons and
    runs split over several sessions (continue with ``resume``). ``init_from`` starts a new
    run (not a resumed one) from the weights of a checkpoint or an exported SpecDiff model:
    fine-tuning on new data or with a new recipe. ``max_minutes`` ends the run (validated and
    checkpointed) after that much wall time: a run that must fit a lease."""
    cfg = load_config(config)
    tcfg, dcfg, lcfg = cfg["train"], cfg["data"], cfg["loss"]
    if data is not None:
        dcfg["dir"] = str(data)
    if steps is not None:
        tcfg["steps"] = int(steps)
    total_steps = int(tcfg.get("steps", 1000))
    flips = check_flips(dcfg.get("flips"))  # a typo fails here, not after the data is opened
    end_step = min(total_steps, int(stop_at)) if stop_at else total_steps
    seed = int(tcfg.get("seed", 0))
    distributed, rank, local_rank, world = _dist_init()
    is_main = rank == 0
    if device == "auto":
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if threads:
        torch.set_num_threads(int(threads))
    if dev.type == "cpu":
        torch.set_flush_denormal(True)  # denormals slow CPU convolutions severalfold
    run = Path(out)
    run.mkdir(parents=True, exist_ok=True)
    _setup_logging(run, is_main)
    torch.manual_seed(seed + rank)
    np.random.seed(seed + rank)

    image_size = int(dcfg.get("image_size", 256))
    rate_channel = bool(cfg["model"].get("rate_conditioning", False))
    ds = open_dataset(dcfg.get("dir", "synthetic"), image_size, int(dcfg.get("synthetic_frames",
                      256)), seed, dcfg, rate_channel)
    if dcfg.get("val_dir") or dcfg.get("dir") == "generate":
        train_idx = list(range(len(ds)))
        # On-the-fly training data validates on its own fixed generated set by default.
        val_ds = open_dataset(dcfg.get("val_dir") or "generate", image_size, 64, seed + 1,
                              {**dcfg, "frames": int(tcfg.get("val_frames", 64))}, rate_channel)
        val_idx = list(range(len(val_ds)))
    else:
        train_idx, val_idx = split_indices(len(ds), float(dcfg.get("val_fraction", 0.05)), seed)
        val_ds = ds
    val_idx = val_idx[: int(tcfg.get("val_frames", 64))]
    cw = lcfg.get("class_weights", "none")
    if cw == "auto":
        class_weights = class_weights_from(ds, train_idx)
    elif isinstance(cw, (list, tuple)):
        class_weights = torch.tensor([float(v) for v in cw])
    else:
        class_weights = None

    model = build_model(cfg).to(dev)
    if distributed and dev.type == "cuda":
        # Per-GPU batches are small: synchronise batch-norm statistics across ranks.
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    schedule = NoiseSchedule(diffusion_args(cfg)["schedule"], diffusion_args(cfg)["T"])
    clip = diffusion_args(cfg)["clip"]
    opt = torch.optim.AdamW(
        model.parameters(), lr=float(tcfg.get("lr", 1e-3)),
        weight_decay=float(tcfg.get("weight_decay", 0.0)),
    )
    ema = EMA(model, float(tcfg.get("ema", 0.999)))
    use_amp = bool(tcfg.get("amp", True)) and dev.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    cpu_bf16 = cpu_bfloat16(tcfg.get("cpu_bf16", False), dev)
    amp_dtype = torch.float16 if use_amp else torch.bfloat16
    step = 0
    best = -1.0
    provenance: dict = {}
    ckpt_path = run / "checkpoint.pt"
    if resume and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        ema.load_state_dict(ck["ema"])
        step = int(ck["step"])
        best = float(ck.get("best", -1.0))
        provenance = dict(ck.get("provenance") or {})
        if is_main:
            log.info("resumed from %s at step %d", ckpt_path, step)
    else:
        if resume and is_main:
            log.info("--resume: no checkpoint in %s, starting fresh", run)
        if init_from is not None:
            model.load_state_dict(initial_weights(init_from, model))
            provenance["init_from"] = _provenance(init_from)
            ema = EMA(model, float(tcfg.get("ema", 0.999)))
            if is_main:
                log.info("initialised from %s", init_from)
    if lcfg.get("distill_items", "t_max") not in ("t_max", "all"):
        raise ValueError(f"loss.distill_items: {lcfg['distill_items']!r}; use t_max or all")
    if not float(lcfg.get("distill_temperature", 1.0)) > 0:
        raise ValueError(f"loss.distill_temperature: {lcfg['distill_temperature']!r}; use a "
                         "number above 0 (1: the teacher's probabilities; below 1: sharper)")
    if lcfg.get("teacher") and model_arch(cfg) == "specdiff" \
            and round(float(lcfg.get("t_max_fraction", 0.0)) * int(tcfg["batch_size"])) < 1:
        raise ValueError("loss.teacher teaches the K = 1 sampler's answer at t_max: set "
                         "loss.t_max_fraction so that each batch has an item there (0.25)")
    teacher = load_teacher(lcfg["teacher"], dev, image_size) if lcfg.get("teacher") else None
    if teacher is not None and is_main:
        log.info("distilling from %s (lambda_distill %s)", lcfg["teacher"],
                 lcfg.get("lambda_distill", 1.0))
    net: nn.Module = HybridLoss(model, schedule, lcfg, class_weights, clip)
    if distributed:
        net = nn.parallel.DistributedDataParallel(
            net, device_ids=[dev.index] if dev.type == "cuda" else None
        )

    sub = torch.utils.data.Subset(ds, train_idx)
    sampler = (
        torch.utils.data.distributed.DistributedSampler(sub, seed=seed) if distributed else None
    )
    g = torch.Generator().manual_seed(seed + rank)
    flip_gen = torch.Generator().manual_seed(seed + rank + 7919)  # independent of batch order
    nw = int(tcfg.get("num_workers", 0))
    loader = torch.utils.data.DataLoader(
        sub, batch_size=int(tcfg.get("batch_size", 8)), shuffle=sampler is None,
        sampler=sampler, num_workers=nw, drop_last=len(sub) >= int(tcfg.get("batch_size", 8)),
        generator=g, pin_memory=dev.type == "cuda", persistent_workers=nw > 0,
    )
    n_params = count_parameters(model)
    info = {"config": cfg.get("name"), "params": n_params, "train_frames": len(train_idx),
            "val_frames": len(val_idx), "device": str(dev), "world": world,
            "cpu_bf16": cpu_bf16,
            "class_weights": None if class_weights is None else class_weights.tolist()}
    if is_main:
        log.info("training %s", json.dumps(info))
        (run / "config.yaml").write_text(__import__("yaml").safe_dump(cfg, sort_keys=False))
    metrics_f = open(run / "metrics.jsonl", "a") if is_main else None  # noqa: SIM115
    data_info = dataset_info(ds)

    def _save(path: Path) -> None:
        save_checkpoint(path, {
            "step": step, "model": model.state_dict(), "optimizer": opt.state_dict(),
            "ema": ema.state_dict(), "config": cfg, "version": CHECKPOINT_VERSION,
            "package_version": __version__, "best": best, "data_info": data_info,
            "provenance": provenance,
        })

    def _validate() -> dict:
        ema_model = build_model(cfg).to(dev)
        ema.copy_to(ema_model)
        res = validate(ema_model, cfg, val_ds, val_idx, dev)
        res["step"] = step
        res["kind"] = "val"
        return res

    pbar = None
    if is_main and progress:
        from tqdm import tqdm

        pbar = tqdm(total=total_steps, initial=step, desc=f"train {cfg.get('name', '')}",
                    dynamic_ncols=True)
    last_val: dict = {}
    log_every = int(tcfg.get("log_every", 20))
    val_every = int(tcfg.get("val_every", 500))
    ckpt_every = int(tcfg.get("ckpt_every", 500))
    grad_clip = float(tcfg.get("grad_clip", 0.0))
    epoch = 0
    t_last = t_start = time.perf_counter()
    deadline = t_start + 60.0 * float(max_minutes) if max_minutes else math.inf
    model.train()
    while step < end_step:
        if sampler is not None:
            sampler.set_epoch(epoch)
        for x, y, _idx in loader:
            if step >= end_step:
                break
            x = x.to(dev, non_blocking=True).float()
            y = y.to(dev, non_blocking=True).long()
            if flips:
                x, y = random_flips(x, y, flips, flip_gen)
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, float(tcfg.get("lr", 1e-3)),
                                     int(tcfg.get("warmup", 0)), total_steps)
            with torch.autocast(dev.type, dtype=amp_dtype, enabled=use_amp or cpu_bf16):
                loss, parts = net(x, y, None if teacher is None else teacher.probabilities)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if grad_clip > 0:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(opt)
            scaler.update()
            ema.update(model, step)
            step += 1
            if time.perf_counter() > deadline and step < end_step:
                end_step = step
                log.info("--max-minutes %s reached: stopping at step %d", max_minutes, step)
            if pbar is not None:
                pbar.update(1)
                pbar.set_postfix(loss=f"{parts['total']:.3f}")
            if is_main and (step % log_every == 0 or step == 1):
                now = time.perf_counter()
                rec = {"kind": "train", "step": step, "lr": opt.param_groups[0]["lr"], **parts,
                       "sec_per_step": (now - t_last) / (log_every if step > 1 else 1)}
                t_last = now
                metrics_f.write(json.dumps(rec) + "\n")
                metrics_f.flush()
                log.info("step %d %s", step, json.dumps(parts))
            if is_main and (step % val_every == 0 or step == end_step):
                last_val = _validate()
                metrics_f.write(json.dumps(last_val) + "\n")
                metrics_f.flush()
                log.info("validation %s", json.dumps(last_val))
                if pbar is not None:
                    pbar.write(f"step {step}: val mean acc {last_val.get('mean_accuracy')}, "
                               f"mean IoU {last_val.get('mean_iou')}")
                score = last_val.get("mean_iou") or 0.0
                if score > best:
                    best = score
                    _save(run / "best.pt")
            if is_main and (step % ckpt_every == 0 or step == end_step):
                _save(ckpt_path)
        epoch += 1
    if pbar is not None:
        pbar.close()
    if metrics_f is not None:
        metrics_f.close()
    if distributed:
        import torch.distributed as dist

        dist.destroy_process_group()
    return {**last_val, "step": step, "run": str(run), "best_mean_iou": best}

# SPDX-License-Identifier: GPL-3.0-or-later
"""The spectrogram front end: the ONE feature function shared by training data and live blocks.

A frame of complex baseband IQ (40 ms by default) becomes a ``3 x 256 x 256`` float32 image,
rows = time (first row first), columns = frequency (lowest first, DC in column 128):

1. Every sample is used: 256-point periodic-Hann FFTs with hop ``H`` (128, or a smaller power
   of two for short frames) over the frame wrapped circularly, so the windows overlap-add to a
   constant and every sample carries the same weight. ``S = ceil(N / H)`` segments.
2. Segment ``s`` belongs to row ``floor(s * 256 / S)``; per row and FFT bin we keep the
   **mean** power (Welch) and the **peak** power (max-hold), so a 1 us radar pulse inside a
   156 us row stays visible in the peak channel although the mean dilutes it ~22 dB.
3. Powers in dB are referred to a robust noise-floor estimate: the 20th percentile of the
   mean-power image (a median fails when a wide carrier fills most of the band).
4. Channels: ``mean``, ``peak`` (both clipped to [-10, +50] dB re floor, scaled to [0, 1]) and
   ``peak - mean`` (clipped to [0, 30] dB, scaled to [0, 1]): physical quantities instead of the
   paper's colour-mapped RGB.

The numpy path (``compute_features``) and the torch path (``compute_features_torch``, batched,
CPU or CUDA) implement the same arithmetic and are tested to agree to float32 rounding.

Bad input policy: non-complex or non-1D input, too few samples and all-zero frames raise
``ValueError``; NaN/Inf samples are replaced by 0 and counted (``Spectrogram.n_nonfinite``),
so one corrupt USB packet does not blank a live display.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

N_ROWS = 256
N_COLS = 256
NFFT = 256
MAX_HOP = NFFT // 2
#: Shortest frame accepted: 4 FFT lengths (hop 4; below that the image is meaningless).
MIN_SAMPLES = N_ROWS * 4
FRAME_SECONDS = 0.040
FLOOR_QUANTILE = 0.2
DB_LOW, DB_HIGH = -10.0, 50.0
CONTRAST_HIGH = 30.0
CHANNELS = ("mean_db", "peak_db", "peak_minus_mean_db")
#: A rate-conditioned model takes one more, constant, channel: ``log2(sample_rate / this)``
#: (0 at 61.44 MS/s, -1.68 at 19.2 MS/s), so it knows how wide a column is (see model_input).
RATE_REFERENCE = 61.44e6
#: Bumped whenever the arithmetic changes; model cards record it (train/serve parity).
VERSION = 1
_TINY = 1e-30


@dataclass(frozen=True)
class Geometry:
    """Where samples and frequencies land in the 256 x 256 image of an N-sample frame."""

    n_samples: int
    sample_rate: float
    hop: int
    n_segments: int
    #: First segment of each row, plus ``n_segments`` at the end (257 values).
    row_segment_edges: np.ndarray

    @property
    def row_sample_edges(self) -> np.ndarray:
        """First sample of each row plus ``n_samples`` (257 values, int64)."""
        return np.minimum(self.row_segment_edges * self.hop, self.n_samples)

    @property
    def row_times(self) -> np.ndarray:
        """Start time of each row in seconds from the first sample of the frame."""
        return self.row_sample_edges[:-1] / self.sample_rate

    @property
    def col_width(self) -> float:
        return self.sample_rate / N_COLS

    @property
    def col_freqs(self) -> np.ndarray:
        """Centre frequency of each column in Hz relative to the tuned centre."""
        return (np.arange(N_COLS) - N_COLS // 2) * self.col_width

    def sample_to_row(self, n):
        """Row that holds sample index ``n`` (array or scalar)."""
        return np.searchsorted(self.row_sample_edges, n, side="right") - 1

    def freq_to_col(self, f):
        """Column whose bin contains baseband frequency ``f`` in Hz (may fall outside 0..255)."""
        return np.floor(np.asarray(f) / self.col_width + N_COLS // 2 + 0.5).astype(np.int64)


def geometry(n_samples: int, sample_rate: float) -> Geometry:
    """STFT layout for a frame of ``n_samples`` at ``sample_rate`` (validates both)."""
    if not (isinstance(sample_rate, (int, float)) and math.isfinite(sample_rate)
            and sample_rate > 0):
        raise ValueError(f"sample_rate must be a positive number of samples/s, got {sample_rate!r}")
    if n_samples < MIN_SAMPLES:
        raise ValueError(
            f"frame has {n_samples} samples; the spectrogram needs at least {MIN_SAMPLES} "
            f"(use a longer frame, e.g. {FRAME_SECONDS * 1e3:.0f} ms = "
            f"{int(FRAME_SECONDS * sample_rate)} samples at {sample_rate / 1e6:g} MS/s)")
    # Largest power-of-two hop <= 128 that still gives every row at least one segment.
    hop = MAX_HOP
    while hop > 1 and n_samples // hop < N_ROWS:
        hop //= 2
    n_segments = -(-n_samples // hop)
    edges = -(-np.arange(N_ROWS + 1, dtype=np.int64) * n_segments // N_ROWS)
    return Geometry(n_samples, float(sample_rate), hop, n_segments, edges)


@dataclass
class Spectrogram:
    features: np.ndarray  # float32 (3, 256, 256)
    geometry: Geometry
    noise_floor_db: float  # dB of the floor estimate (relative to full-scale |x|^2 = 1)
    n_nonfinite: int  # NaN/Inf samples that were replaced by 0

    @property
    def row_times(self) -> np.ndarray:
        return self.geometry.row_times

    @property
    def col_freqs(self) -> np.ndarray:
        return self.geometry.col_freqs


def hann_window(dtype=np.float32) -> np.ndarray:
    """Periodic Hann window (overlap-adds to a constant at hops dividing NFFT / 2)."""
    n = np.arange(NFFT)
    return (0.5 - 0.5 * np.cos(2 * np.pi * n / NFFT)).astype(dtype)


def _check_iq(iq) -> np.ndarray:
    iq = np.asarray(iq)
    if iq.ndim != 1:
        raise ValueError(f"IQ frame must be one-dimensional, got shape {iq.shape}")
    if not np.iscomplexobj(iq):
        raise ValueError(
            f"IQ frame must be complex (complex64), got {iq.dtype}; convert interleaved "
            "I/Q with iq[0::2] + 1j * iq[1::2]")
    return iq.astype(np.complex64, copy=False)


def _segments(x: np.ndarray, geo: Geometry) -> np.ndarray:
    """(S, NFFT) windowed-frame view of the zero-padded frame, wrapped circularly."""
    padded_len = geo.n_segments * geo.hop
    wrapped = np.concatenate([x, np.zeros(padded_len - len(x), x.dtype), x[: NFFT - geo.hop]])
    return np.lib.stride_tricks.sliding_window_view(wrapped, NFFT)[:: geo.hop][: geo.n_segments]


def _normalise_np(mean_p: np.ndarray, peak_p: np.ndarray) -> tuple[np.ndarray, float]:
    mean_db = 10 * np.log10(mean_p + _TINY)
    peak_db = 10 * np.log10(peak_p + _TINY)
    floor = np.float32(np.quantile(mean_db, FLOOR_QUANTILE))
    span = DB_HIGH - DB_LOW
    out = np.empty((3, N_ROWS, N_COLS), np.float32)
    out[0] = np.clip((mean_db - floor - DB_LOW) / span, 0, 1)
    out[1] = np.clip((peak_db - floor - DB_LOW) / span, 0, 1)
    out[2] = np.clip((peak_db - mean_db) / CONTRAST_HIGH, 0, 1)
    return out, float(floor)


def native_available() -> bool:
    """True when the compiled gr-fft/VOLK kernel (``gr_specdiff._frontend``) is importable."""
    return _native_engine() is not None


_ENGINE = []


def _native_engine():
    if not _ENGINE:
        try:
            from gr_specdiff._frontend import RowPowerEngine
        except ImportError:  # not built (pure-Python checkout): the numpy path serves
            _ENGINE.append(None)
        else:
            _ENGINE.append(RowPowerEngine(max(1, min(2, os.cpu_count() or 1))))
    return _ENGINE[0]


def _row_powers_numpy(x: np.ndarray, geo: Geometry, workers: int):
    import scipy.fft

    with np.errstate(invalid="ignore", over="ignore"):  # NaN/Inf input is handled by the caller
        spec = scipy.fft.fft(_segments(x, geo) * hann_window(), axis=-1, workers=workers,
                             overwrite_x=True)
        power = spec.real ** 2 + spec.imag ** 2
    if geo.n_segments % N_ROWS == 0:  # the usual case (40 ms frames): equal groups
        grouped = power.reshape(N_ROWS, -1, NFFT)
        mean_p, peak_p = grouped.mean(axis=1), grouped.max(axis=1)
    else:
        starts = geo.row_segment_edges[:-1]
        counts = np.diff(geo.row_segment_edges).astype(np.float32)
        mean_p = np.add.reduceat(power, starts, axis=0) / counts[:, None]
        peak_p = np.maximum.reduceat(power, starts, axis=0)
    # Shift DC to column 128 after the reduction: 256 x 256 values instead of S x 256.
    return np.fft.fftshift(mean_p, axes=-1), np.fft.fftshift(peak_p, axes=-1)


@dataclass
class PowerImages:
    """Linear per-pixel powers before normalisation (|X|^2 of the Hann-windowed FFT)."""

    mean: np.ndarray  # float32 (256, 256): mean over the row's segments (Welch)
    peak: np.ndarray  # float32 (256, 256): max over the row's segments (max-hold)
    geometry: Geometry
    n_nonfinite: int


def power_images(iq, sample_rate: float, workers: int = -1,
                 backend: str = "auto") -> PowerImages:
    """Steps 1-2 of the module docstring: mean and peak power per pixel, linear units.

    ``backend``: ``"native"`` (gr-fft + VOLK kernel, several times faster), ``"numpy"``
    (scipy.fft), or ``"auto"`` (native when built). Both compute the same numbers (tested).
    """
    x = _check_iq(iq)
    geo = geometry(len(x), sample_rate)
    if backend not in ("auto", "native", "numpy"):
        raise ValueError(f"backend must be auto, native or numpy, got {backend!r}")
    engine = _native_engine() if backend in ("auto", "native") else None
    if backend == "native" and engine is None:
        raise ValueError("backend='native' needs the compiled kernel: run the CMake build "
                         "(make setup), or use backend='numpy'")

    def row_powers(samples):
        if engine is not None:
            return engine(np.ascontiguousarray(samples), geo.hop, geo.row_segment_edges)
        return _row_powers_numpy(samples, geo, workers)

    mean_p, peak_p = row_powers(x)
    n_bad = 0
    # A NaN/Inf sample poisons the powers of every window holding it: scan the IQ only then.
    if not np.isfinite(peak_p).all():
        bad = ~np.isfinite(x)
        n_bad = int(np.count_nonzero(bad))
        mean_p, peak_p = row_powers(np.where(bad, np.complex64(0), x))
    if not peak_p.max() > 0:
        raise ValueError("IQ frame is all zeros (no signal and no noise): is the source running?")
    return PowerImages(mean_p, peak_p, geo, n_bad)


def compute_features(iq, sample_rate: float, workers: int = -1,
                     backend: str = "auto") -> Spectrogram:
    """Spectrogram features of one IQ frame (see the module docstring and power_images)."""
    powers = power_images(iq, sample_rate, workers, backend)
    feats, floor = _normalise_np(powers.mean, powers.peak)
    return Spectrogram(feats, powers.geometry, floor, powers.n_nonfinite)



def compute_features_torch(iq, sample_rate: float):
    """Batched torch path: ``iq`` (N,) or (B, N) complex tensor on any device.

    Returns ``(features (B, 3, 256, 256) float32, n_nonfinite (B,) int64)`` on the input's
    device. Same arithmetic as :func:`compute_features`.
    """
    import torch

    if not torch.is_tensor(iq):
        iq = torch.from_numpy(_check_iq(iq))
    if not iq.is_complex():
        raise ValueError(f"IQ frame must be a complex tensor, got {iq.dtype}")
    if iq.dim() == 1:
        iq = iq.unsqueeze(0)
    if iq.dim() != 2:
        raise ValueError(f"IQ batch must have shape (N,) or (B, N), got {tuple(iq.shape)}")
    x = iq.to(torch.complex64)
    batch, n = x.shape
    geo = geometry(n, sample_rate)
    bad = ~torch.isfinite(x)
    n_bad = bad.sum(dim=1)
    x = torch.where(bad, torch.zeros((), dtype=x.dtype, device=x.device), x)
    if bool((x.abs().amax(dim=1) == 0).any()):
        raise ValueError("IQ frame is all zeros (no signal and no noise): is the source running?")
    padded_len = geo.n_segments * geo.hop
    pad = torch.zeros(batch, padded_len - n, dtype=x.dtype, device=x.device)
    wrapped = torch.cat([x, pad, x[:, : NFFT - geo.hop]], dim=1)
    seg = wrapped.unfold(1, NFFT, geo.hop)[:, : geo.n_segments]
    window = torch.from_numpy(hann_window()).to(x.device)
    spec = torch.fft.fft(seg * window, dim=-1)
    power = spec.real.square() + spec.imag.square()
    if geo.n_segments % N_ROWS == 0:
        grouped = power.reshape(batch, N_ROWS, geo.n_segments // N_ROWS, NFFT)
        mean_p, peak_p = grouped.mean(dim=2), grouped.amax(dim=2)
    else:
        row = torch.from_numpy(
            np.repeat(np.arange(N_ROWS), np.diff(geo.row_segment_edges))).to(x.device)
        index = row.view(1, -1, 1).expand_as(power)
        zeros = torch.zeros(batch, N_ROWS, NFFT, dtype=power.dtype, device=x.device)
        mean_p = zeros.scatter_reduce(1, index, power, "mean", include_self=False)
        peak_p = zeros.scatter_reduce(1, index, power, "amax", include_self=False)
    mean_p = torch.fft.fftshift(mean_p, dim=-1)
    peak_p = torch.fft.fftshift(peak_p, dim=-1)
    mean_db = 10 * torch.log10(mean_p + _TINY)
    peak_db = 10 * torch.log10(peak_p + _TINY)
    floor = torch.quantile(mean_db.reshape(batch, -1), FLOOR_QUANTILE, dim=1).view(-1, 1, 1)
    span = DB_HIGH - DB_LOW
    feats = torch.stack([
        ((mean_db - floor - DB_LOW) / span).clamp(0, 1),
        ((peak_db - floor - DB_LOW) / span).clamp(0, 1),
        ((peak_db - mean_db) / CONTRAST_HIGH).clamp(0, 1),
    ], dim=1)
    return feats, n_bad


def rate_value(sample_rate: float) -> float:
    """The rate channel's value: ``log2(sample_rate / RATE_REFERENCE)``."""
    if not sample_rate > 0:
        raise ValueError(f"sample rate must be > 0, got {sample_rate}")
    return math.log2(float(sample_rate) / RATE_REFERENCE)


def model_input(features, sample_rate: float, rate_channel: bool):
    """What a model is fed: the spectrogram ``features`` ((3, H, W) or (B, 3, H, W), numpy or
    torch), plus, for a rate-conditioned model (``rate_channel``), a constant plane holding
    :func:`rate_value`. Training data and the live blocks both go through this function.

    Why a plane and not a second argument: the exported-model contract stays one tensor in,
    and every consumer (blocks, evaluation, training) needs no other change; the network reads
    the value back from the plane once and conditions its encoder on it."""
    if not rate_channel:
        return features
    value = rate_value(sample_rate)
    shape = tuple(features.shape[:-3]) + (1,) + tuple(features.shape[-2:])
    if isinstance(features, np.ndarray):
        return np.concatenate([features, np.full(shape, value, features.dtype)], axis=-3)
    import torch

    plane = torch.full(shape, value, dtype=features.dtype, device=features.device)
    return torch.cat([features, plane], dim=-3)


def mirror_frequency(image):
    """``image`` (``(..., W)``, numpy or torch: features, labels or probabilities) as the
    spectrogram of the conjugated IQ shows it: conjugation negates frequency, so column ``c``
    (bin ``c - W/2``) trades places with column ``(W - c) % W``; DC (``W/2``) and the Nyquist
    column 0 stay. Exact for the features up to float rounding (the FFT of the conjugate sums
    in another order), since each is a per-pixel function of the powers and a floor that
    ignores column order; a receiver with spectral inversion (high-side LO)
    sees exactly this. Its own inverse."""
    n = image.shape[-1]
    if isinstance(image, np.ndarray):
        return image[..., (n - np.arange(n)) % n]
    import torch

    return image.index_select(-1, (n - torch.arange(n, device=image.device)) % n)


def to_db_image(features: np.ndarray) -> np.ndarray:
    """Peak-power channel back in dB above the noise floor, for display (256 x 256)."""
    return np.asarray(features)[1] * (DB_HIGH - DB_LOW) + DB_LOW

# SPDX-License-Identifier: GPL-3.0-or-later
"""TorchScript export and loading of segmentation models (the exported-model contract).

``export_model(module, path, card)`` scripts ``module`` (``forward(x) -> (class map uint8,
confidence float32)``), saves ``<stem>.ts``, and writes the model card ``<stem>.yaml`` with the
sha256 of the ``.ts`` file. ``load_model(path)`` (``.ts`` or ``.yaml``) verifies the sha256 and
the spectrogram version and returns an :class:`ExportedModel` that takes numpy or torch
features and returns numpy arrays. ``torch.jit.load`` + the card is all a runtime needs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import yaml

from gr_specdiff import CLASSES, PRECISIONS
from gr_specdiff import spectrogram as _spec
from gr_specdiff.runtime import card_rate_channel

log = logging.getLogger(__name__)

REQUIRED_CARD_KEYS = (
    "name",
    "classes",
    "sample_rates",
    "frame_seconds",
    "spectrogram",
    "sampler",
    "model",
    "training",
    "metrics",
    "sha256",
)


class ModelLoadError(ValueError):
    """A model file is missing, corrupt, or does not match its card / this package."""


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: without them bfloat16 is emulated and slower than float32."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(precision: str, device: torch.device) -> str:
    """``precision`` checked; bfloat16 on a CPU without native bfloat16 falls back to float32
    with a warning (it would run slower, not faster)."""
    if precision not in PRECISIONS:
        raise ModelLoadError(f"precision must be one of {', '.join(PRECISIONS)}, "
                             f"got {precision!r}")
    if precision == "bfloat16" and device.type == "cpu" and not cpu_has_native_bf16():
        log.warning("precision bfloat16: this CPU has no native bfloat16 (AVX512-BF16/AMX), "
                    "where it runs slower than float32; running in float32")
        return "float32"
    if precision == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        log.warning("precision bfloat16: this GPU has no bfloat16; running in float32")
        return "float32"
    return precision


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_card(name: str) -> dict:
    """A card skeleton with the package's spectrogram parameters filled in."""
    return {
        "name": name,
        "classes": list(CLASSES),
        "sample_rates": [],
        "frame_seconds": float(_spec.FRAME_SECONDS),
        "spectrogram": {
            "version": int(_spec.VERSION),
            "nfft": int(_spec.NFFT),
            "rows": int(_spec.N_ROWS),
            "cols": int(_spec.N_COLS),
            "channels": list(_spec.CHANNELS),
        },
        "sampler": {"steps": 0},
        "model": {},
        "training": {},
        "metrics": {},
    }


def model_files(path: str | Path) -> tuple[Path, Path]:
    """``(<stem>.ts, <stem>.yaml)`` for a model named by its stem, its .ts or its card."""
    p = Path(path)
    if p.suffix in (".ts", ".yaml", ".yml"):
        p = p.with_suffix("")
    return p.with_suffix(".ts"), p.with_suffix(".yaml")


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; models are read by other users/installs
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _plain(obj):
    """Card values as plain YAML types (tuples -> lists, numpy scalars -> Python)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def export_model(module: torch.nn.Module, path: str | Path, card: dict) -> Path:
    """Script ``module``, save ``<stem>.ts`` and ``<stem>.yaml``; returns the ``.ts`` path.

    ``card`` is merged over :func:`default_card`; ``sha256`` is computed here.
    """
    ts_path, card_path = model_files(path)
    ts_path.parent.mkdir(parents=True, exist_ok=True)
    was_training = module.training
    module.eval()
    try:
        with warnings.catch_warnings():  # torch >= 2.10 marks TorchScript deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            scripted = torch.jit.script(module)
    finally:
        module.train(was_training)
    tmp = ts_path.with_name(f".{ts_path.name}.tmp")
    scripted.save(str(tmp))
    os.replace(tmp, ts_path)
    full = default_card(card.get("name", ts_path.stem))
    for key, value in card.items():
        if isinstance(value, dict) and isinstance(full.get(key), dict):
            full[key] = {**full[key], **value}
        else:
            full[key] = value
    full["sha256"] = sha256_file(ts_path)
    text = yaml.safe_dump(_plain(full), sort_keys=False)
    _atomic_write_bytes(card_path, text.encode())
    return ts_path


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> cuda if available else cpu (with a logged warning); ``cuda`` must exist."""
    d = str(device)
    if d == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        log.warning("CUDA not available: running the segmentation model on the CPU")
        return torch.device("cpu")
    if d.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"device {d!r} requested but CUDA is not available; use 'cpu'")
    if d != "cpu" and not d.startswith("cuda"):
        raise ModelLoadError(f"device must be auto, cuda or cpu, got {d!r}")
    return torch.device(d)


class ExportedModel:
    """A loaded TorchScript model plus its card; call it with its input ``(B,)C x 256 x 256``:
    the spectrogram features, plus the rate plane for a rate-conditioned model
    (:meth:`input` builds it). ``flips``: the test-time flips it runs with, those baked into
    the file (its card's ``sampler.flips``) and those added at load time. ``precision``:
    ``float32`` or ``bfloat16`` (autocast around every call, :data:`PRECISIONS`)."""

    def __init__(self, module: torch.nn.Module, card: dict, device: torch.device, flips=(),
                 precision: str = "float32"):
        self.module = module
        self.precision = resolve_precision(precision, device)
        self.flips = list((card.get("sampler") or {}).get("flips") or []) + list(flips)
        self.card = card
        self.device = device
        self.sample_rates = [float(r) for r in card.get("sample_rates") or []]
        self.frame_seconds = float(card.get("frame_seconds", _spec.FRAME_SECONDS))
        self.classes = tuple(card.get("classes", CLASSES))
        self.name = str(card.get("name", ""))
        self.rate_channel = card_rate_channel(card)
        self.input_channels = len(_spec.CHANNELS) + int(self.rate_channel)

    def __repr__(self) -> str:
        views = f", flips={self.flips}" if self.flips else ""
        if self.precision != "float32":
            views += f", precision={self.precision}"
        return f"ExportedModel({self.name!r}, device={self.device}{views})"

    def input(self, features, sample_rate: float):
        """The model's input for spectrogram ``features`` computed at ``sample_rate``."""
        return _spec.model_input(features, sample_rate, self.rate_channel)

    def warm_up(self, calls: int = 2) -> None:
        """Run the model on a blank frame: TorchScript's profiling executor makes the first
        two calls ~10-15x slower (168 + 113 ms vs 11 ms for specdiff_default on 2 CPU cores),
        and CUDA initialises its kernels on first use. A live block does this before its
        first real frame, so the first frames are not dropped or late."""
        blank = np.zeros((1, len(_spec.CHANNELS), _spec.N_ROWS, _spec.N_COLS), np.float32)
        blank = self.input(blank, self.sample_rates[0] if self.sample_rates
                           else _spec.RATE_REFERENCE)
        for _ in range(calls):
            self(blank)

    @torch.inference_mode()
    def __call__(self, x) -> tuple[np.ndarray, np.ndarray]:
        x = torch.as_tensor(x)
        if x.dim() == 3:
            x = x.unsqueeze(0)
        c = self.input_channels
        if x.dim() != 4 or x.shape[1] != c:
            hint = (" (features plus the sample-rate plane: build it with model.input("
                    "features, sample_rate))" if self.rate_channel else "")
            raise ValueError(
                f"model input must be (B, {c}, H, W) or ({c}, H, W){hint}, got {tuple(x.shape)}")
        x = x.to(self.device, torch.float32)
        with torch.autocast(self.device.type, dtype=torch.bfloat16,
                            enabled=self.precision == "bfloat16"):
            cls, conf = self.module(x)
        return (
            cls.to("cpu", torch.uint8).numpy(),
            conf.to("cpu", torch.float32).numpy(),
        )


def load_card(path: str | Path) -> dict:
    _ts, card_path = model_files(path)
    if not card_path.exists():
        raise ModelLoadError(
            f"model card {card_path} not found: a model is a .ts file plus its .yaml card; "
            "re-export it with `specdiff export`"
        )
    try:
        card = yaml.safe_load(card_path.read_text())
    except yaml.YAMLError as exc:
        raise ModelLoadError(f"model card {card_path} is not valid YAML ({exc})") from exc
    if not isinstance(card, dict):
        raise ModelLoadError(f"model card {card_path} is not a mapping")
    missing = [k for k in REQUIRED_CARD_KEYS if k not in card]
    if missing:
        raise ModelLoadError(f"model card {card_path} lacks {missing}; re-export the model")
    return card


def load_model(path: str | Path, device: str | torch.device = "auto",
               flips=(), precision: str = "float32") -> ExportedModel:
    """Load ``<stem>.ts`` + ``<stem>.yaml`` (either path given), verifying sha256 and version.
    ``flips`` (``pipeline.FLIPS``) averages the model over flipped views of each frame
    (``pipeline.FlipAveraged``): better maps for one more network pass per view.
    ``precision`` ``bfloat16`` runs it under bfloat16 autocast: faster on a CPU with native
    bfloat16, the same maps to within rounding (docs/BENCHMARKS.md measures both).

    On CPU this turns on ``torch.set_flush_denormal`` (process-wide): denormal activations in
    nearly-silent feature maps otherwise slow convolutions down by up to 5x.
    """
    ts_path, card_path = model_files(path)
    if not ts_path.exists():
        raise ModelLoadError(
            f"model file {ts_path} not found; export one with `specdiff export` "
            "(or `specdiff export --random --config lite --out models/NAME` for a test model)"
        )
    card = load_card(card_path)
    digest = sha256_file(ts_path)
    if digest != card["sha256"]:
        raise ModelLoadError(
            f"sha256 of {ts_path} ({digest[:12]}...) does not match its card {card_path} "
            f"({str(card['sha256'])[:12]}...): the file is corrupt or belongs to another card; "
            "copy both files again or re-export"
        )
    version = (card.get("spectrogram") or {}).get("version")
    if version != _spec.VERSION:
        raise ModelLoadError(
            f"{ts_path} was trained on spectrogram version {version}, this gr_specdiff computes "
            f"version {_spec.VERSION}: retrain/re-export the model for this version"
        )
    dev = resolve_device(device)
    if dev.type == "cpu":
        torch.set_flush_denormal(True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(ts_path), map_location=dev)
    except Exception as exc:  # torch raises RuntimeError or others on corrupt archives
        raise ModelLoadError(
            f"{ts_path} is not a loadable TorchScript file ({type(exc).__name__}); re-export it"
        ) from exc
    module.eval()
    if flips:
        from .pipeline import FlipAveraged, check_flips

        flips = check_flips(flips)
        if not hasattr(module, "probabilities"):
            raise ModelLoadError(
                f"{ts_path} was exported before test-time flips existed (no probabilities()); "
                "re-export it with `specdiff export` to use flips")
        module = FlipAveraged(module, flips).eval()
    return ExportedModel(module, card, dev, flips, precision)

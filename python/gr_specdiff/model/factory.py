# SPDX-License-Identifier: GPL-3.0-or-later
"""Configs (``gr_specdiff/configs/*.yaml``) -> models and inference pipelines."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from .specdiff import SpecDiff, SpecDiffConfig

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def config_path(name_or_path: str | Path) -> Path:
    """A config name (``lite``) or a YAML path -> the YAML path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.exists():
            raise FileNotFoundError(f"config {p} not found")
        return p
    q = CONFIG_DIR / f"{name_or_path}.yaml"
    if not q.exists():
        names = sorted(x.stem for x in CONFIG_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"no config named {name_or_path!r}; shipped configs: {names}")
    return q


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(name_or_path: str | Path | dict, _chain: tuple = ()) -> dict:
    """A config dict. ``base: NAME`` in a YAML inherits that config, overriding key by key
    (nested sections merge), so a recipe states only what it changes."""
    if isinstance(name_or_path, dict):
        return copy.deepcopy(name_or_path)
    path = config_path(name_or_path)
    if path in _chain:
        raise ValueError(f"config {path} inherits from itself via {[str(p) for p in _chain]}")
    cfg = yaml.safe_load(path.read_text())
    if not isinstance(cfg, dict):
        raise ValueError(f"config {name_or_path} is not a YAML mapping")
    if "base" in cfg:
        base = cfg.pop("base")
        # A relative base path is relative to the inheriting file; a bare name is shipped.
        ref = path.parent / base if str(base).endswith((".yaml", ".yml")) else base
        cfg = _merge(load_config(ref, _chain + (path,)), cfg)
    if "model" not in cfg:
        raise ValueError(f"config {name_or_path} has no 'model' section")
    cfg.setdefault("diffusion", {})
    cfg.setdefault("loss", {})
    cfg.setdefault("train", {})
    cfg.setdefault("data", {})
    return cfg


def model_arch(cfg: dict) -> str:
    return str(cfg["model"].get("arch", "specdiff"))


def build_model(cfg: dict):
    """SpecDiff (``model.arch: specdiff``, default) or a baseline (``unet``, ``deeplab``)."""
    arch = model_arch(cfg)
    if arch == "specdiff":
        m = {k: v for k, v in cfg["model"].items() if k != "arch"}
        return SpecDiff(SpecDiffConfig.from_dict(m))
    from .baselines import build_baseline

    return build_baseline(arch, cfg["model"])


def load_trained(checkpoint: str | Path, cfg: dict | None = None):
    """A training checkpoint's network with its EMA weights (the raw ones if it has none), in
    eval mode, and its config: ``(model, config)``. An exported SpecDiff (``.ts``/``.yaml``)
    gives the weights it was exported with (a model soup has no checkpoint of its own) and
    its card's training config (``cfg`` builds it with another config instead)."""
    import torch

    if Path(checkpoint).suffix in (".ts", ".yaml"):
        from gr_specdiff.model.export import load_card
        from gr_specdiff.train import initial_weights

        cfg = cfg or load_card(checkpoint)["training"]["config"]
        model = build_model(cfg)
        model.load_state_dict(initial_weights(checkpoint, model))
        return model.eval(), cfg
    ck = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model = build_model(ck["config"])
    model.load_state_dict(ck["ema"] or ck["model"])
    return model.eval(), ck["config"]


def diffusion_args(cfg: dict) -> dict:
    d = cfg.get("diffusion", {})
    return {
        "schedule": d.get("schedule", "cosine"),
        "T": int(d.get("T", 1000)),
        "steps": int(d.get("steps", 5)),
        "order": int(d.get("order", 2)),
        "clip": float(d.get("clip", 1.0)),
        "seeds": int(d.get("seeds", 1)),
    }


def build_pipeline(model, cfg: dict, steps: int | None = None, image_size: int = 256,
                   flips=()):
    """The exported-model contract around ``model``; ``flips`` (``pipeline.FLIPS``) averages
    it over flipped views of each frame."""
    from .pipeline import FlipAveraged, LogitsPipeline, SpecDiffPipeline

    if not isinstance(model, SpecDiff):
        pipe = LogitsPipeline(model)
    else:
        args = diffusion_args(cfg)
        if steps is not None:
            args["steps"] = int(steps)
        pipe = SpecDiffPipeline(model, image_size=image_size, seed=0, **args)
    return FlipAveraged(pipe, flips) if flips else pipe

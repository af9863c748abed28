# SPDX-License-Identifier: GPL-3.0-or-later
"""Seconds per training step on the CPU: float32 against bfloat16 autocast and friends.

    .venv/bin/python benchmarks/bench_train_step.py                    # restart_default2
    .venv/bin/python benchmarks/bench_train_step.py --configs lite restart_default2 \\
        --modes fp32 bf16 channels_last --steps 12
    .venv/bin/python benchmarks/bench_train_step.py --modes fp32 bf16 compile compile+bf16

One optimizer step of ``specdiff train``'s loss (``HybridLoss``: the config's timestep mix,
recycling and flips excluded) on one batch of real frames (``--data``; random rectangles when
it is missing), forward, backward and AdamW, ``--threads`` threads with flush-denormal on as
``train`` sets it. Modes combine ``bf16`` (``torch.autocast`` bfloat16: what
``train.cpu_bf16`` does), ``channels_last`` (NHWC weights and input) and ``compile``
(``torch.compile`` of the loss module, compile time reported as the first step). Prints per
config and mode the first step, the median of the rest and the speed-up over ``fp32``. The
data loader, EMA update and validation that a real run adds are not in these numbers, so a
run's ``sec_per_step`` is higher.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from gr_specdiff.model.diffusion import NoiseSchedule
from gr_specdiff.model.export import cpu_has_native_bf16
from gr_specdiff.model.factory import build_model, diffusion_args, load_config
from gr_specdiff.train import HybridLoss, SyntheticRectangles, open_dataset

MODES = ("fp32", "bf16", "channels_last", "channels_last+bf16", "compile", "compile+bf16")


def one_batch(data: str, cfg: dict, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    ds = (open_dataset(data, 256, 0, 0, cfg["data"], False) if Path(data).is_dir()
          else SyntheticRectangles(batch, 256, seed=0))
    items = [ds[i] for i in range(batch)]
    return (torch.stack([torch.as_tensor(it[0]) for it in items]).float(),
            torch.stack([torch.as_tensor(it[1]) for it in items]).long())


def step_times(cfg: dict, mode: str, x: torch.Tensor, y: torch.Tensor,
               steps: int) -> list[float]:
    """Wall seconds of ``steps`` training steps in ``mode`` (fresh weights each mode)."""
    torch.manual_seed(0)
    model = build_model(cfg)
    da = diffusion_args(cfg)
    loss_fn: torch.nn.Module = HybridLoss(model, NoiseSchedule(da["schedule"], da["T"]),
                                          cfg["loss"], None, da["clip"])
    if "channels_last" in mode:
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    if "compile" in mode:
        loss_fn = torch.compile(loss_fn)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model.train()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled="bf16" in mode):
            loss, _parts = loss_fn(x, y, None)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", nargs="+", default=["restart_default2"])
    ap.add_argument("--modes", nargs="+", default=["fp32", "bf16"], choices=MODES)
    ap.add_argument("--data", default="data/val1k", help="a dataset directory (first batch)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per mode (>= 3)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if args.steps < 3:
        ap.error("--steps: at least 3 (the first is warm-up, the median needs the rest)")
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    native = cpu_has_native_bf16()
    print(f"CPU: {torch.backends.cpu.get_cpu_capability()}, native bfloat16: {native}, "
          f"{args.threads} threads, batch {args.batch}, torch {torch.__version__}")
    print("| config | mode | first step (s) | median step (s) | speed-up over fp32 |")
    print("|---|---|---|---|---|")
    for name in args.configs:
        cfg = load_config(name)
        x, y = one_batch(args.data, cfg, args.batch)
        base = None
        for mode in args.modes:
            times = step_times(cfg, mode, x, y, args.steps)
            med = statistics.median(times[1:])
            base = med if mode == "fp32" else base
            speed = f"{base / med:.2f}x" if base else "–"
            print(f"| {name} | {mode} | {times[0]:.2f} | {med:.3f} | {speed} |", flush=True)


if __name__ == "__main__":
    main()

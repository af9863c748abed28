# SPDX-License-Identifier: GPL-3.0-or-later
"""Parameters, MACs and per-frame latency of SpecDiff configs and baselines.

    .venv/bin/python benchmarks/bench_model.py                       # all, CPU 2 threads
    .venv/bin/python benchmarks/bench_model.py --configs lite --steps 1 3 --repeats 10

For every config and K (DPM-Solver++ steps; baselines have none) prints parameters, MACs per
256 x 256 frame (counted with forward hooks on every Conv2d / Linear during one scripted-graph-
equivalent eager pass, so the K denoiser evaluations are included) and median latency per
frame at batch 1 and batch ``--batch``, TorchScript, ``torch.inference_mode``, printed as
``best/median`` of ``--repeats`` calls (best = least disturbed by other processes). CPU with
``--threads`` threads and flush-denormal on (as ``load_model`` does), and CUDA (fp32 and fp16
autocast) when available. Weights are random (latency does not depend on training, except
through denormals, which flush-denormal removes).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from gr_specdiff.model.baselines import EnergyDetector
from gr_specdiff.model.factory import build_model, build_pipeline, load_config
from gr_specdiff.model.specdiff import count_parameters


def count_macs(module: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass over Conv2d and Linear layers."""
    total = 0

    def conv_hook(m: nn.Conv2d, inp, out):
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        total += out.numel() * k

    def linear_hook(m: nn.Linear, inp, out):
        nonlocal total
        total += out.numel() * m.in_features

    hooks = []
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    with torch.inference_mode():
        module(x)
    for h in hooks:
        h.remove()
    return total


def latency_ms(fn, x: torch.Tensor, repeats: int, sync=None) -> tuple[float, float]:
    """``(best, median)`` milliseconds per frame over ``repeats`` timed calls."""
    with torch.inference_mode():
        for _ in range(3):  # TorchScript profiling runs + warm-up
            fn(x)
        if sync:
            sync()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(x)
            if sync:
                sync()
            times.append(time.perf_counter() - t0)
    n = x.shape[0]
    return 1000.0 * min(times) / n, 1000.0 * statistics.median(times) / n


def bench(name: str, steps_list, batch: int, repeats: int, devices) -> list[dict]:
    rows = []
    if name == "energy":
        models = [(None, EnergyDetector(), 0)]
    else:
        cfg = load_config(name)
        torch.manual_seed(0)
        model = build_model(cfg).eval()
        is_diff = cfg["model"].get("arch", "specdiff") == "specdiff"
        ks = steps_list if is_diff else [0]
        models = [(model, build_pipeline(model, cfg, steps=k if k else None), k) for k in ks]
    for model, pipe, k in models:
        pipe = pipe.eval()
        params = count_parameters(model) if model is not None else 0
        c = model.config.input_channels if model is not None and hasattr(model, "config") else 3
        x1 = torch.rand(1, c, 256, 256)
        macs = count_macs(pipe, x1)
        scripted = torch.jit.script(pipe)
        row = {"model": name, "K": k, "params": params, "gmacs": macs / 1e9}
        for dev in devices:
            s = scripted.to(dev)
            sync = torch.cuda.synchronize if dev == "cuda" else None
            xb1 = x1.to(dev)
            xbn = torch.rand(batch, c, 256, 256, device=dev)
            row[f"{dev}_b1_ms"] = latency_ms(s, xb1, repeats, sync)
            row[f"{dev}_b{batch}_ms"] = latency_ms(s, xbn, max(2, repeats // 2), sync)
            if dev == "cuda":
                def half(x, s=s):
                    with torch.autocast("cuda", dtype=torch.float16):
                        return s(x)

                row["cuda_fp16_b1_ms"] = latency_ms(half, xb1, repeats, sync)
                row[f"cuda_fp16_b{batch}_ms"] = latency_ms(half, xbn, repeats, sync)
        rows.append(row)
        print(_fmt(row), flush=True)
    return rows


def _fmt(row: dict) -> str:
    parts = [f"{row['model']:>10}", f"K={row['K']:<2}", f"params={row['params'] / 1e6:6.3f}M",
             f"GMACs={row['gmacs']:7.3f}"]
    parts += [f"{k}={v[0]:7.1f}/{v[1]:7.1f}" for k, v in row.items() if k.endswith("_ms")]
    return "  ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+",
                    default=["lite", "paper", "unet_lite", "unet", "energy"])
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 2, 5, 10])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-cuda", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    devices = ["cpu"]
    if torch.cuda.is_available() and not args.no_cuda:
        devices.append("cuda")
    print(f"torch {torch.__version__}, {args.threads} CPU threads, devices {devices}")
    for name in args.configs:
        bench(name, args.steps, args.batch, args.repeats, devices)


if __name__ == "__main__":
    main()

# SPDX-License-Identifier: GPL-3.0-or-later
"""``specdiff eval``: the paper's metrics for an exported model (or a checkpoint) on a dataset."""

from __future__ import annotations

import argparse

from gr_specdiff.commands import add_flips_argument, add_precision_argument


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate a model on a dataset (metrics JSON + Markdown + plots)",
        description=(
            "Mean accuracy, mean IoU, per-class IoU, global accuracy, confusion matrix, per-SNR "
            "curves, accuracy vs DPM-Solver++ steps (needs a checkpoint), latency, a gallery "
            "PNG; written to OUT as metrics.json, report.md and PNGs."
        ),
    )
    p.add_argument("--model", required=True,
                   help="exported model (.ts/.yaml), a training checkpoint (.pt), or 'energy'")
    p.add_argument("--data", required=True, help="dataset directory (or 'synthetic')")
    p.add_argument("--out", default=None, help="report directory (default: <model>_eval)")
    p.add_argument("--frames", type=int, default=None, help="evaluate the first N frames only")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--device", default="auto")
    add_flips_argument(p)
    add_precision_argument(p)
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint for the accuracy-vs-steps sweep (default: the card's)")
    p.add_argument("--sweep-steps", type=int, nargs="*", default=[1, 2, 3, 5, 10],
                   help="sampler steps K for the sweep (empty: no sweep)")
    p.add_argument("--sweep-frames", type=int, default=64, help="frames used by the sweep")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.set_defaults(func=_main)


def _torch_runner(pipe, device):
    import torch

    pipe = pipe.to(device).eval()

    @torch.inference_mode()
    def run(x):
        cls, conf = pipe(torch.as_tensor(x, device=device))
        return cls.cpu().numpy(), conf.cpu().numpy()

    return run


def _main(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import numpy as np
    import torch

    from gr_specdiff.evaluate import (
        evaluate,
        measure_latency,
        metrics_from_confusion,
        write_report,
    )
    from gr_specdiff.model.export import load_model, resolve_device
    from gr_specdiff.runtime import parse_flips
    from gr_specdiff.train import open_dataset

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    model_path = Path(args.model)
    ckpt_path = args.checkpoint
    steps = None
    flips = list(parse_flips(args.flips))  # test-time views; an export adds its own below
    rate_channel = False  # does the model take the sample-rate plane (model_input)?
    energy = args.model == "energy"
    if args.precision != "float32" and (energy or model_path.suffix == ".pt"):
        raise ValueError("--precision applies to exported models (.ts/.yaml): export the "
                         "checkpoint with `specdiff export` first")
    if energy:
        from gr_specdiff.model.baselines import EnergyDetector

        if flips:
            raise ValueError("--flips: the energy detector has no probabilities to average")
        run = _torch_runner(EnergyDetector(), device)
        name = "energy"
    elif model_path.suffix == ".pt":
        from gr_specdiff.model.factory import build_pipeline, load_trained

        model, cfg = load_trained(model_path)
        rate_channel = bool(cfg["model"].get("rate_conditioning", False))
        pipe = build_pipeline(model, cfg, flips=flips)
        steps = getattr(getattr(pipe, "pipe", pipe), "steps", None)
        run = _torch_runner(pipe, device)
        ckpt_path = ckpt_path or str(model_path)
        name = model_path.stem
    else:
        em = load_model(model_path, device=device, flips=flips, precision=args.precision)
        run = em
        rate_channel = em.rate_channel
        steps = em.card.get("sampler", {}).get("steps")
        flips = em.flips
        ckpt_path = ckpt_path or em.card.get("training", {}).get("checkpoint")
        name = em.name
    ds = open_dataset(args.data, rate_channel=rate_channel)
    shape = tuple(ds[0][0].shape)
    report = evaluate(run, ds, max_frames=args.frames, batch=args.batch)
    report.update(model=str(args.model), data=str(args.data), steps=steps, flips=flips,
                  precision=getattr(run, "precision", "float32"))
    report["latency"] = {"batch": 1, "device": str(device),
                         "ms_per_frame": measure_latency(run, shape, batch=1)}
    report["latency_batched"] = {"batch": args.batch,
                                 "ms_per_frame": measure_latency(run, shape, batch=args.batch)}
    if energy:
        # Occupancy only (class map 0/1): noise-vs-signal IoU from the confusion matrix.
        cm = report["metrics"]["confusion_matrix"]
        tn = cm[0][0]
        fp = sum(cm[0][1:])
        fn = sum(r[0] for r in cm[1:])
        tp = sum(sum(r[1:]) for r in cm[1:])
        report["occupancy_iou"] = {
            "signal": tp / max(tp + fp + fn, 1),
            "noise": tn / max(tn + fp + fn, 1),
        }
        report["occupancy_iou"]["mean"] = sum(report["occupancy_iou"].values()) / 2
    if args.sweep_steps and ckpt_path and Path(ckpt_path).exists() and not energy:
        from gr_specdiff.evaluate import confusion_matrix
        from gr_specdiff.model.factory import build_pipeline, load_trained

        model, cfg = load_trained(ckpt_path)
        sweep = []
        n = min(len(ds), args.sweep_frames)
        for k in args.sweep_steps:
            pipe = build_pipeline(model, cfg, steps=k)
            if not hasattr(pipe, "steps"):
                break
            r = _torch_runner(pipe, device)
            cm = np.zeros((4, 4), np.int64)
            for s in range(0, n, args.batch):
                items = [ds[i] for i in range(s, min(n, s + args.batch))]
                x = np.stack([np.asarray(it[0], np.float32) for it in items])
                y = np.stack([np.asarray(it[1]) for it in items])
                cm += confusion_matrix(r(x)[0], y)
            m = metrics_from_confusion(cm)
            sweep.append({"steps": k, "frames": n, "mean_accuracy": m["mean_accuracy"],
                          "mean_iou": m["mean_iou"],
                          "ms_per_frame": measure_latency(r, shape, batch=1, repeats=3)})
        report["vs_steps"] = sweep
    out = Path(args.out) if args.out else Path(f"{name}_eval")
    write_report(report, out)
    m = report["metrics"]
    print(json.dumps({k: m[k] for k in ("mean_accuracy", "mean_iou", "global_accuracy",
                                         "per_class_iou")}, indent=2))
    if "occupancy_iou" in report:
        print("occupancy IoU:", json.dumps(report["occupancy_iou"]))
    print(f"wrote {out}/metrics.json, report.md and plots")
    return 0

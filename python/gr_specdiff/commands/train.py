# SPDX-License-Identifier: GPL-3.0-or-later
"""``specdiff train``: train SpecDiff from a config (see ``gr_specdiff/configs``)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a SpecDiff model",
        description=(
            "Train SpecDiff on a dataset directory (manifest.yaml + shards) or on the built-in "
            "synthetic rectangles (--data synthetic). Writes RUN/checkpoint.pt, best.pt, "
            "metrics.jsonl, train.log. Multi-GPU: torchrun --nproc_per_node=N -m "
            "gr_specdiff.cli train ..."
        ),
    )
    p.add_argument("--config", required=True, help="config name (paper, lite, tiny) or YAML path")
    p.add_argument("--data", default=None, help="dataset directory (default: config data.dir)")
    p.add_argument("--out", default=None, help="run directory (default: runs/<config name>)")
    p.add_argument("--steps", type=int, default=None, help="total optimizer steps")
    p.add_argument("--stop-at", type=int, default=None,
                   help="stop after this step (checkpointed) while the LR schedule spans --steps")
    p.add_argument("--resume", action="store_true", help="continue from RUN/checkpoint.pt")
    p.add_argument("--init-from", default=None, metavar="MODEL",
                   help="start a new run from these weights: a checkpoint .pt (EMA weights) or "
                        "an exported SpecDiff (.ts/.yaml) built from the same config")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop (validated, checkpointed) after this much wall time")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    import json

    from gr_specdiff.model.factory import load_config
    from gr_specdiff.train import train

    cfg = load_config(args.config)
    out = args.out or f"runs/{cfg.get('name', 'specdiff')}"
    res = train(cfg, data=args.data, out=out, steps=args.steps, resume=args.resume,
                device=args.device, progress=not args.no_progress, threads=args.threads,
                stop_at=args.stop_at, init_from=args.init_from,
                max_minutes=args.max_minutes)
    print(json.dumps(res, indent=2))
    return 0

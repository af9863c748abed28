# SPDX-License-Identifier: GPL-3.0-or-later
"""``specdiff export``: write a TorchScript model + YAML card from a checkpoint (or random)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a trained SpecDiff checkpoint to TorchScript + model card",
        description=(
            "Export encoder + K-step DPM-Solver++ sampler + decoder as ONE TorchScript module "
            "(<out>.ts) with its model card (<out>.yaml). --random exports an untrained model "
            "for developing against the runtime contract."
        ),
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint",
                     help="training checkpoint (.pt; EMA weights) to export, or an exported "
                          "model (.ts/.yaml) to export again (other --steps, --flips, --average)")
    src.add_argument("--random", action="store_true", help="export a randomly initialised model")
    p.add_argument("--config", default=None, help="config name or YAML (default: checkpoint's)")
    p.add_argument("--out", required=True, help="output path without suffix, e.g. models/lite")
    p.add_argument("--steps", type=int, default=None, help="sampler steps K (default: config)")
    p.add_argument("--seeds", type=int, default=None, help="noise seeds averaged for confidence")
    p.add_argument("--flips", nargs="+", default=(), metavar="FLIP",
                   help="average over flipped views of each frame: frequency and/or time "
                        "(test-time augmentation; one network pass per view)")
    p.add_argument("--no-ema", action="store_true", help="export raw instead of EMA weights")
    p.add_argument("--average", nargs="+", default=(), metavar="MODEL",
                   help="average the checkpoint's (EMA) weights with these checkpoints' or "
                        "exported models' (.pt, .ts or .yaml): a uniform model soup of "
                        "fine-tunings from one parent")
    p.add_argument("--metrics", default=None, help="JSON from `specdiff eval` to put in the card")
    p.add_argument("--seed", type=int, default=0, help="init seed for --random")
    p.add_argument(
        "--sample-rates",
        type=float,
        nargs="+",
        default=None,
        help="sample rates (Hz) for the card (default: from the training data)",
    )
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    import json

    import torch

    from gr_specdiff.model.export import export_model
    from gr_specdiff.model.factory import build_model, build_pipeline, load_config, model_arch
    from gr_specdiff.model.specdiff import count_parameters

    exported = bool(args.checkpoint) and Path(args.checkpoint).suffix != ".pt"
    if args.average and (args.random or args.no_ema):
        print("export: --average averages trained (EMA) weights; it cannot be combined with "
              "--random or --no-ema")
        return 2
    if exported and args.no_ema:
        print(f"export: {args.checkpoint} is an exported model and holds one set of weights; "
              "--no-ema needs a training checkpoint (.pt)")
        return 2
    training: dict = {}
    if args.random:
        cfg = load_config(args.config or "lite")
        torch.manual_seed(args.seed)
        model = build_model(cfg)
        training = {"checkpoint": None, "note": "random initialisation, NOT trained"}
    elif exported:  # re-export (other K, flips, an average): the card holds config and record
        from gr_specdiff.model.export import load_card
        from gr_specdiff.model.factory import load_trained

        card = load_card(args.checkpoint)  # load_trained verifies its sha256 as it loads
        model, cfg = load_trained(args.checkpoint, load_config(args.config) if args.config
                                  else None)
        training = {**card["training"],
                    "exported_from": {"path": str(args.checkpoint), "sha256": card["sha256"]}}
    else:
        ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
        cfg = load_config(args.config) if args.config else ckpt["config"]
        model = build_model(cfg)
        key = "model" if args.no_ema or not ckpt.get("ema") else "ema"
        model.load_state_dict(ckpt[key])
        training = {
            "checkpoint": str(args.checkpoint),
            "step": int(ckpt.get("step", 0)),
            "weights": key,
            "data": ckpt.get("data_info", {}),
            **({"initialised_from": ckpt["provenance"]["init_from"]}
               if (ckpt.get("provenance") or {}).get("init_from") else {}),
        }
    if args.average:
        from gr_specdiff.train import average_weights

        model.load_state_dict(average_weights([args.checkpoint, *args.average], model))
        training["averaged_with"] = [str(a) for a in args.average]
    if args.seeds is not None:
        cfg.setdefault("diffusion", {})["seeds"] = args.seeds
    model.eval()
    pipe = build_pipeline(model, cfg, steps=args.steps, flips=args.flips)
    sampler = getattr(pipe, "pipe", pipe)  # under FlipAveraged
    steps = getattr(sampler, "steps", 0)
    metrics = json.loads(Path(args.metrics).read_text()) if args.metrics else {}
    data = training.get("data") or {}
    made_with = {**(data.get("config") or {}), **data}  # the dataset's generation config
    sample_rates = args.sample_rates or made_with.get("sample_rates", [])
    frame_seconds = made_with.get("frame_seconds")
    if not frame_seconds and made_with.get("preset") == "paper" and sample_rates:
        from gr_specdiff.scene.paper import frame_seconds as paper_frame_seconds

        frame_seconds = paper_frame_seconds(sample_rates[0])
    card = {
        "name": Path(args.out).name,
        "sample_rates": sample_rates,
        "spectrogram": {"rate_channel": bool(cfg["model"].get("rate_conditioning", False))},
        **({"frame_seconds": float(frame_seconds)} if frame_seconds else {}),
        "sampler": {
            "kind": "dpm-solver++" if steps else "none",
            "steps": steps,
            "order": getattr(sampler, "order", 0),
            "seeds": getattr(sampler, "seeds", 0),
            "flips": list(args.flips),
            "schedule": cfg.get("diffusion", {}).get("schedule", "cosine") if steps else None,
        },
        "model": {
            "arch": model_arch(cfg),
            "config": cfg["model"],
            "parameters": count_parameters(model),
        },
        "training": {**training, "config": cfg},
        "metrics": metrics,
    }
    path = export_model(pipe, args.out, card)
    print(f"wrote {path} and {path.with_suffix('.yaml')}")
    return 0

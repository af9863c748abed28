# SPDX-License-Identifier: GPL-3.0-or-later
"""``specdiff datagen``: build a sharded training/test dataset of synthetic scenes."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "datagen", help="generate a sharded dataset of synthetic NR/LTE/radar scenes",
        description="Generate frames (features, labels, masks, metadata) into DIR as shards "
                    "plus manifest.yaml. Deterministic per (seed, split, shard); rerun the same "
                    "command to resume after a crash.")
    p.add_argument("--frames", type=int, required=True, help="number of frames")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--seed", type=int, default=None,
                   help="master seed (default 0; the test split uses its fixed TEST_SEED)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--rate", type=float, nargs="+", default=[61.44e6],
                   help="sample rate(s) in S/s; frames draw one of them (default 61.44e6)")
    p.add_argument("--preset", choices=["realistic", "paper"], default="realistic")
    p.add_argument("--split", choices=["train", "test", "val"], default="train",
                   help="seed-tree branch; 'test' never overlaps 'train' (default train)")
    p.add_argument("--frame-seconds", type=float, default=None,
                   help="frame length (default 0.04; the paper preset sets its own)")
    p.add_argument("--frames-per-shard", type=int, default=64)
    p.add_argument("--variants", type=int, default=4,
                   help="channel/SNR variants per core instance (paper: 24)")
    p.add_argument("--preview", action="store_true",
                   help="also write DIR/preview.png (first 16 frames with label overlays)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    import numpy as np

    from gr_specdiff.data import TEST_SEED, build

    seed = args.seed if args.seed is not None else (TEST_SEED if args.split == "test" else 0)
    if not 1 <= args.workers <= 64:
        raise ValueError("--workers must be between 1 and 64")
    build(args.out, args.frames, seed=seed, workers=args.workers, sample_rates=args.rate,
          preset=args.preset, frame_seconds=args.frame_seconds,
          frames_per_shard=args.frames_per_shard, variants=args.variants, split=args.split,
          progress=not args.no_progress)
    if args.preview:
        from gr_specdiff.data import SpectrumDataset
        from gr_specdiff.data.preview import preview_grid

        ds = SpectrumDataset(args.out)
        idx = sorted({int(i) for i in np.linspace(0, len(ds) - 1, min(16, len(ds)))})
        items = [ds[i] for i in idx]
        path = preview_grid([f.numpy() for f, _, _ in items], [lab.numpy() for _, lab, _ in items],
                            [ds.meta(i) for i in idx], Path(args.out) / "preview.png")
        print(f"preview: {path}")
    print(f"dataset: {args.out} ({args.frames} frames, seed {seed}, split {args.split})")
    return 0

# SPDX-License-Identifier: GPL-3.0-or-later
"""Dataset builder: shards of (features, labels, masks, meta), deterministic per (seed, split,
shard), resumable (a shard is either complete or absent), with a YAML manifest.

Structure after the paper: *core instances* (signal types, bandwidths, positions, cell IDs,
radar waveforms) each rendered in ``variants`` versions with freshly drawn channel, SNR,
traffic and receiver impairments.

Randomness: shard ``s`` of split ``k`` uses ``SeedSequence(seed, spawn_key=(k, s))``; the test
split (k = 1) is a disjoint branch of the seed tree, so it never repeats a training frame.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from .. import __version__
from .shards import shard_name, valid_shard, write_shard

#: Branch of the seed tree per split (never reuse a number).
SPLITS = {"train": 0, "test": 1, "val": 2}
#: The fixed test split definition: ``specdiff datagen --split test`` uses this seed.
TEST_SEED = 20_240_611
MANIFEST = "manifest.yaml"


def shard_seed(seed: int, split: str, shard: int) -> np.random.SeedSequence:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    return np.random.SeedSequence(int(seed), spawn_key=(SPLITS[split], int(shard)))


def _core_spec(scene):
    """SceneSpec that keeps a scene's signals (type, band, position, IDs, waveform) but leaves
    channel, SNR and impairments to be drawn again."""
    from ..scene import LTESpec, NRSpec, RadarSpec, SceneSpec

    keep_out = {"channel", "f_center", "occupied_hz", "pulse_times_s", "n_pulses", "frame_offset_s",
                "start_slot", "start_subframe", "first_pulse_s", "beam_time_s"}
    spec = SceneSpec()
    for t in scene.signals:
        params = {k: v for k, v in t.params.items() if k not in keep_out}
        f_c = t.params.get("f_center")
        if t.kind == "NR":
            spec.nr.append(NRSpec(f_center=f_c, params=params))
        elif t.kind == "LTE":
            spec.lte.append(LTESpec(f_center=f_c, params=params))
        else:
            spec.radar.append(RadarSpec(f_center=f_c, params=params))
    return spec


def generate_shard(config: dict, split: str, shard: int) -> dict:
    """Generate the frames of one shard; returns arrays ready for ``write_shard``."""
    from ..scene import generate

    n = int(config["frames_per_shard"])
    total = int(config["frames"])
    n = min(n, total - shard * n)
    ss = shard_seed(config["seed"], split, shard)
    rates = [float(r) for r in config["sample_rates"]]
    variants = max(1, int(config["variants"]))
    feats = np.empty((n, 3, 256, 256), np.float16)
    labels = np.empty((n, 256, 256), np.uint8)
    masks = np.empty((n, 4, 256, 256), bool)
    metas = []
    for i in range(n):
        core_i, var_i = divmod(i, variants)
        # Stateless children of the shard's seed: (core,) picks the rate, (core, variant) the rest.
        core_rng = np.random.default_rng(np.random.SeedSequence(
            ss.entropy, spawn_key=ss.spawn_key + (core_i,)))
        rate = rates[int(core_rng.integers(0, len(rates)))]
        rng = np.random.default_rng(np.random.SeedSequence(
            ss.entropy, spawn_key=ss.spawn_key + (core_i, var_i)))
        if config["preset"] == "paper":
            # Paper structure: the same draw (core rng replayed) noise-free for variant 0,
            # then at whole-band SNRs cycling through {-10, 0, 10, 20, 30} dB.
            from ..scene.paper import PAPER_SNRS, generate_paper

            snr = None if var_i == 0 else PAPER_SNRS[(var_i - 1 + core_i) % len(PAPER_SNRS)]
            scene = generate_paper(core_rng, rate, None, whole_snr_db=snr, noise_rng=rng)
        elif var_i == 0:
            scene = generate(rng, rate, config["frame_seconds"], None, config["preset"])
            core = _core_spec(scene)
        else:
            scene = generate(rng, rate, config["frame_seconds"], core, config["preset"])
        feats[i] = scene.features()
        labels[i] = scene.class_map
        masks[i] = scene.masks
        meta = dict(scene.meta, split=split, shard=shard, index_in_shard=i, core=core_i,
                    variant=var_i)
        metas.append(meta)
    return {"features": feats, "labels": labels, "masks": masks, "metas": metas}


def _work(args):
    out_dir, config, split, shard = args
    t = time.time()
    arrays = generate_shard(config, split, shard)
    write_shard(Path(out_dir) / shard_name(shard), arrays["features"], arrays["labels"],
                arrays["masks"], arrays["metas"])
    return shard, len(arrays["labels"]), time.time() - t


def write_manifest(out_dir: Path, config: dict, shards: list[dict]) -> None:
    import yaml

    from ..scene import GENERATOR_VERSION
    from ..spectrogram import VERSION as SPEC_VERSION

    doc = {"format": "gr_specdiff.dataset", "format_version": 1,
           "generator": "gr_specdiff.scene", "generator_version": GENERATOR_VERSION,
           "package_version": __version__, "spectrogram_version": SPEC_VERSION,
           "seed": int(config["seed"]), "split": config["split"],
           "sample_rates": [float(r) for r in config["sample_rates"]],
           "config": config, "frames": sum(s["frames"] for s in shards),
           "shards": sorted(shards, key=lambda s: s["name"])}
    tmp = out_dir / (MANIFEST + ".tmp")
    tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
    os.replace(tmp, out_dir / MANIFEST)


def build(out_dir: str | Path, frames: int, seed: int = 0, workers: int = 1,
          sample_rates=(61.44e6,), preset: str = "realistic", frame_seconds: float | None = None,
          frames_per_shard: int = 64, variants: int = 4, split: str = "train",
          progress: bool = True) -> dict:
    """Generate (or finish) a dataset in ``out_dir``; returns the manifest config."""
    import yaml

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if frame_seconds is None:
        frame_seconds = 0.04 if preset != "paper" else 0.0  # paper: 3 radar PRIs
    config = {"frames": int(frames), "seed": int(seed), "split": split,
              "sample_rates": [float(r) for r in sample_rates], "preset": preset,
              "frame_seconds": float(frame_seconds), "frames_per_shard": int(frames_per_shard),
              "variants": int(variants)}
    if frames <= 0 or frames_per_shard <= 0:
        raise ValueError("--frames and frames per shard must be positive")
    shard_seed(seed, split, 0)  # validates the split name
    mpath = out_dir / MANIFEST
    if mpath.exists():
        old = yaml.safe_load(mpath.read_text()) or {}
        if old.get("config") and old["config"] != config:
            raise ValueError(f"{out_dir} holds a dataset with another config ({old['config']}); "
                             "use a new --out or the same options to resume it")
    n_shards = -(-frames // frames_per_shard)
    sizes = [min(frames_per_shard, frames - s * frames_per_shard) for s in range(n_shards)]
    done = [s for s in range(n_shards) if valid_shard(out_dir / shard_name(s), sizes[s])]
    todo = [s for s in range(n_shards) if s not in set(done)]
    for tmp in out_dir.glob("shard_*.npz.tmp*"):
        tmp.unlink()  # leftovers of an interrupted run
    shards = [{"name": shard_name(s), "frames": sizes[s]} for s in done]
    write_manifest(out_dir, config, shards)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=frames, initial=sum(sizes[s] for s in done), unit="frame",
                   desc="datagen", dynamic_ncols=True)
    jobs = [(str(out_dir), config, split, s) for s in todo]
    workers = max(1, min(int(workers), len(jobs) or 1))
    try:
        if workers == 1:
            results = map(_work, jobs)
            pool = None
        else:
            import multiprocessing as mp

            pool = mp.get_context("fork").Pool(workers)
            results = pool.imap_unordered(_work, jobs)
        for shard, n, _dt in results:
            shards.append({"name": shard_name(shard), "frames": n})
            write_manifest(out_dir, config, shards)
            if bar is not None:
                bar.update(n)
        if pool is not None:
            pool.close()
            pool.join()
    finally:
        if bar is not None:
            bar.close()
    return config

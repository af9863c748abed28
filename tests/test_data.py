# SPDX-License-Identifier: GPL-3.0-or-later
"""Dataset builder: shard layout, determinism per (seed, shard), resume, splits, Dataset."""

import numpy as np
import pytest
import yaml

from gr_specdiff.data import SpectrumDataset, build
from gr_specdiff.data.build import generate_shard, shard_seed
from gr_specdiff.data.shards import ShardReader

CFG = {"frames": 6, "seed": 5, "split": "train", "sample_rates": [15.36e6, 19.2e6],
       "preset": "realistic", "frame_seconds": 0.005, "frames_per_shard": 3, "variants": 2}


def _build(path, **kw):
    args = dict(frames=6, seed=5, sample_rates=[15.36e6, 19.2e6], frame_seconds=0.005,
                frames_per_shard=3, variants=2, progress=False)
    args.update(kw)
    return build(path, **args)


def test_build_layout_and_dataset(tmp_path):
    _build(tmp_path)
    man = yaml.safe_load((tmp_path / "manifest.yaml").read_text())
    assert man["frames"] == 6 and len(man["shards"]) == 2 and man["generator_version"] >= 1
    r = ShardReader(tmp_path / "shard_00000.npz")
    assert r.features.dtype == np.float16 and r.features.shape == (3, 3, 256, 256)
    assert r.labels.dtype == np.uint8 and r.masks(0).shape == (4, 256, 256)
    ds = SpectrumDataset(tmp_path)
    assert len(ds) == 6
    f, lab, i = ds[4]
    assert f.dtype.is_floating_point and tuple(f.shape) == (3, 256, 256)
    assert str(lab.dtype) == "torch.int64" and i == 4
    m = ds.meta(4)
    assert m["sample_rate"] in (15.36e6, 19.2e6) and m["variant"] == 1 and m["shard"] == 1
    # Core instance x variants: same signals and bands, new SNR/channel.
    a, b = ds.meta(0), ds.meta(1)
    assert [s["kind"] for s in a["signals"]] == [s["kind"] for s in b["signals"]]
    for sa, sb in zip(a["signals"], b["signals"]):
        assert sa["params"]["f_center"] == sb["params"]["f_center"]
    import torch.utils.data

    assert isinstance(ds, torch.utils.data.Dataset)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert tuple(batch[0].shape) == (2, 3, 256, 256)


def test_deterministic_per_shard_and_resumable(tmp_path):
    a = generate_shard(CFG, "train", 1)
    b = generate_shard(CFG, "train", 1)
    c = generate_shard(CFG, "train", 0)
    assert a["features"].tobytes() == b["features"].tobytes()
    assert a["features"].tobytes() != c["features"].tobytes()
    _build(tmp_path)
    p = tmp_path / "shard_00001.npz"
    before = p.read_bytes()
    p.unlink()
    (tmp_path / "shard_00000.npz.tmp123").write_bytes(b"partial")  # a crashed write
    mtime0 = (tmp_path / "shard_00000.npz").stat().st_mtime_ns
    _build(tmp_path)
    assert p.read_bytes() == before
    assert (tmp_path / "shard_00000.npz").stat().st_mtime_ns == mtime0  # not regenerated
    assert not list(tmp_path.glob("*.tmp*"))
    with pytest.raises(ValueError, match="another config"):
        _build(tmp_path, seed=6)


def test_test_split_never_overlaps_train():
    assert shard_seed(0, "train", 0).spawn_key != shard_seed(0, "test", 0).spawn_key
    tr = generate_shard(dict(CFG, frames=3), "train", 0)
    te = generate_shard(dict(CFG, frames=3), "test", 0)
    for x in te["features"]:
        assert all(x.tobytes() != y.tobytes() for y in tr["features"])
    with pytest.raises(ValueError):
        shard_seed(0, "holdout", 0)


def test_datagen_command_with_preview(tmp_path):
    from gr_specdiff.cli import main

    rc = main(["datagen", "--frames", "2", "--out", str(tmp_path), "--rate", "15.36e6",
               "--frame-seconds", "0.005", "--frames-per-shard", "2", "--preview",
               "--no-progress"])
    assert rc == 0 and (tmp_path / "preview.png").stat().st_size > 1000
    assert len(SpectrumDataset(tmp_path)) == 2


def test_paper_preset_dataset_pairs_clean_and_noisy():
    cfg = dict(CFG, preset="paper", sample_rates=[61.44e6], frames=2, frames_per_shard=2,
               variants=2, frame_seconds=0.0)
    out = generate_shard(cfg, "train", 0)
    m0, m1 = out["metas"]
    assert m0["noise_free"] and not m1["noise_free"] and m1["whole_snr_db"] in (
        -10.0, 0.0, 10.0, 20.0, 30.0)
    assert m0["paper_scene"] == m1["paper_scene"] and m0["n_samples"] == 3 * 58515
    assert np.array_equal(out["labels"][0], out["labels"][1])  # labels from nominal params
    radar_rows = (out["labels"][0] == 3).all(axis=1)
    assert 3 <= radar_rows.sum() <= 6  # three 1 us pulses, whole rows


def test_dataset_directories_read_as_one(tmp_path):
    """``data.dir`` may list several directories: frames, metadata and masks come from the
    part holding each index, and the card's data record names every part."""
    from gr_specdiff.train import dataset_info, open_dataset

    for seed in (1, 2):
        _build(tmp_path / f"d{seed}", frames=3, seed=seed, frames_per_shard=2)
    one, two = (SpectrumDataset(tmp_path / f"d{s}") for s in (1, 2))
    both = open_dataset([tmp_path / "d1", tmp_path / "d2"], rate_channel=True)
    assert len(both) == 6
    x, labels, index = both[4]
    assert index == 4 and x.shape == (4, 256, 256)
    np.testing.assert_array_equal(x[:3].numpy(), two[1][0].numpy())
    assert both.meta(4) == two.meta(1) and both.meta(0) == one.meta(0)
    np.testing.assert_array_equal(both.masks(3), two.masks(0))
    info = dataset_info(both)
    assert info["frames"] == 6 and info["seed"] == [1, 2] and len(info["dir"]) == 2

# SPDX-License-Identifier: GPL-3.0-or-later
"""``SpectrumDataset``: the torch Dataset over a ``specdiff datagen`` directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .build import MANIFEST
from .shards import ShardReader


class _Parted:
    """Frames kept in consecutive parts (shards, or whole datasets): ``_starts`` holds each
    part's first frame plus the total, ``_part(k)`` gives part ``k``, which has its own
    ``meta(j)`` and ``masks(j)``."""

    _starts: np.ndarray

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _part(self, k: int):
        raise NotImplementedError

    def _locate(self, i: int):
        if not 0 <= i < len(self):
            raise IndexError(f"frame {i} out of range (dataset has {len(self)})")
        k = int(np.searchsorted(self._starts, i, side="right") - 1)
        return self._part(k), i - int(self._starts[k])

    def meta(self, i: int) -> dict:
        part, j = self._locate(int(i))
        return part.meta(j)

    def masks(self, i: int) -> np.ndarray:
        part, j = self._locate(int(i))
        return part.masks(j)


class SpectrumDataset(_Parted):
    """Frames of a dataset directory: ``ds[i] -> (features float32 (3, 256, 256),
    labels int64 (256, 256), i)``; ``ds.meta(i)`` the frame's parameters, ``ds.masks(i)`` its
    per-class masks (4, 256, 256) bool, ``ds.manifest`` the manifest dict.

    A subclass of ``torch.utils.data.Dataset`` when torch is importable.
    """

    def __init__(self, root: str | Path):
        import yaml

        self.root = Path(root)
        mpath = self.root / MANIFEST
        if not mpath.exists():
            raise FileNotFoundError(f"{self.root} has no {MANIFEST}; run `specdiff datagen`")
        try:
            self.manifest = yaml.safe_load(mpath.read_text())
        except yaml.YAMLError as exc:
            raise ValueError(f"{mpath}: corrupt manifest ({exc})") from None
        if not isinstance(self.manifest, dict) or "shards" not in self.manifest:
            raise ValueError(f"{mpath}: not a gr_specdiff dataset manifest")
        self.shard_names = [s["name"] for s in self.manifest["shards"]]
        sizes = [int(s["frames"]) for s in self.manifest["shards"]]
        self._starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._readers: dict[int, ShardReader] = {}

    def _part(self, k: int) -> ShardReader:
        r = self._readers.get(k)
        if r is None:
            r = self._readers[k] = ShardReader(self.root / self.shard_names[k])
        return r

    def __getitem__(self, i: int):
        import torch

        i = int(i)
        r, j = self._locate(i)
        feats = torch.from_numpy(np.asarray(r.features[j], np.float32))
        labels = torch.from_numpy(np.asarray(r.labels[j]).astype(np.int64))
        return feats, labels, i

    def __getstate__(self):  # DataLoader workers reopen their own memory maps
        d = dict(self.__dict__)
        d["_readers"] = {}
        return d


class ConcatFrames(_Parted):
    """Several dataset directories read as one (``data.dir`` given as a list): frame ``i`` of
    the whole is frame ``i - start`` of the part holding it. ``manifest`` is the first part's,
    with every part's seed and directory and the total frame count, for the model card."""

    def __init__(self, parts: list):
        if not parts:
            raise ValueError("no dataset directories given")
        self.parts = list(parts)
        versions = {p.manifest.get("generator_version") for p in self.parts}
        if len(versions) > 1:
            raise ValueError(f"dataset directories from different generator versions "
                             f"{sorted(map(str, versions))}: regenerate the older ones")
        self._starts = np.concatenate([[0], np.cumsum([len(p) for p in self.parts])])
        self.manifest = {**self.parts[0].manifest,
                         "seed": [p.manifest.get("seed") for p in self.parts],
                         "frames": int(self._starts[-1])}
        self.root = [str(p.root) for p in self.parts]

    def _part(self, k: int):
        return self.parts[k]

    def __getitem__(self, i: int):
        part, j = self._locate(int(i))
        feats, labels, _ = part[j]
        return feats, labels, int(i)


class WithRateChannel:
    """``ds`` with each frame's features passed through ``spectrogram.model_input`` for a
    rate-conditioned model: the frame's own sample rate (``ds.meta(i)["sample_rate"]``) as a
    4th, constant channel. Everything else (``meta``, ``masks``, ``manifest``) is ``ds``'s."""

    def __init__(self, ds):
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        from gr_specdiff.spectrogram import model_input

        feats, labels, index = self.ds[i]
        rate = self.ds.meta(index).get("sample_rate")
        if not rate:
            raise ValueError(f"frame {index} has no sample_rate in its metadata: a "
                             "rate-conditioned model cannot be fed from this dataset")
        return model_input(feats, float(rate), True), labels, index

    def __getattr__(self, name):
        if name == "ds":  # not yet set (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.ds, name)


def _torch_dataset(cls):
    """``cls`` as a subclass of ``torch.utils.data.Dataset`` where torch is importable."""
    try:
        import torch.utils.data as tud
    except ImportError:  # pragma: no cover
        return cls
    return type(cls.__name__, (cls, tud.Dataset), {"__doc__": cls.__doc__,
                                                   "__module__": __name__})


SpectrumDataset = _torch_dataset(SpectrumDataset)
ConcatFrames = _torch_dataset(ConcatFrames)
WithRateChannel = _torch_dataset(WithRateChannel)

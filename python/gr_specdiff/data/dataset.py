# SPDX-License-Identifier: GPL-3.0-or-later
"""``SpectrumDataset``: the torch Dataset over a ``specdiff datagen`` directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .build import MANIFEST
from .shards import ShardReader


class SpectrumDataset:
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

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _locate(self, i: int) -> tuple[ShardReader, int]:
        if not 0 <= i < len(self):
            raise IndexError(f"frame {i} out of range (dataset has {len(self)})")
        s = int(np.searchsorted(self._starts, i, side="right") - 1)
        r = self._readers.get(s)
        if r is None:
            r = self._readers[s] = ShardReader(self.root / self.shard_names[s])
        return r, i - int(self._starts[s])

    def __getitem__(self, i: int):
        import torch

        i = int(i)
        r, j = self._locate(i)
        feats = torch.from_numpy(np.asarray(r.features[j], np.float32))
        labels = torch.from_numpy(np.asarray(r.labels[j]).astype(np.int64))
        return feats, labels, i

    def meta(self, i: int) -> dict:
        r, j = self._locate(int(i))
        return r.meta(j)

    def masks(self, i: int) -> np.ndarray:
        r, j = self._locate(int(i))
        return r.masks(j)

    def __getstate__(self):  # DataLoader workers reopen their own memory maps
        d = dict(self.__dict__)
        d["_readers"] = {}
        return d


try:  # make it a real torch Dataset where torch exists
    import torch.utils.data as _tud

    SpectrumDataset = type("SpectrumDataset", (SpectrumDataset, _tud.Dataset),
                           {"__doc__": SpectrumDataset.__doc__,
                            "__module__": __name__})
except ImportError:  # pragma: no cover
    pass

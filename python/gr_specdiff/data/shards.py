# SPDX-License-Identifier: GPL-3.0-or-later
"""Shard files (``shard_NNNNN.npz``): atomic writes, and memory-mapped reads of the
uncompressed members so a shuffled DataLoader touches only the frames it needs."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

KEYS = ("features", "labels", "masks", "meta")


def shard_name(index: int) -> str:
    return f"shard_{index:05d}.npz"


def write_shard(path: str | Path, features: np.ndarray, labels: np.ndarray, masks: np.ndarray,
                metas: list[dict]) -> None:
    """Write one shard atomically (temporary file, then ``os.replace``).

    ``features`` (n, 3, 256, 256) -> float16, ``labels`` (n, 256, 256) uint8, ``masks``
    (n, 4, 256, 256) bool -> packed bits along the last axis, ``metas`` one JSON dict a frame.
    """
    path = Path(path)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    meta = np.array([json.dumps(m, separators=(",", ":")) for m in metas])
    with open(tmp, "wb") as f:
        np.savez(f, features=np.asarray(features, np.float16),
                 labels=np.asarray(labels, np.uint8),
                 masks=np.packbits(np.asarray(masks, bool), axis=-1), meta=meta)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _member_memmap(path: Path, zf: zipfile.ZipFile, name: str) -> np.ndarray:
    """Memory-map one ZIP_STORED ``.npy`` member of an ``.npz``."""
    info = zf.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED:
        return np.load(zf.open(name))
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        if local[:4] != b"PK\x03\x04":
            raise ValueError(f"{path}: corrupt zip member {name}")
        n_name = int.from_bytes(local[26:28], "little")
        n_extra = int.from_bytes(local[28:30], "little")
        start = info.header_offset + 30 + n_name + n_extra
        f.seek(start)
        # Public header readers (numpy 1.x and 2.x); an unknown format version loads normally.
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(
                           np.lib.format.read_magic(f))
        if read_header is None:
            return np.load(zf.open(name))
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
    if dtype.hasobject or fortran:
        return np.load(zf.open(name))
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)


class ShardReader:
    """Lazy access to one shard's arrays (memory-mapped where possible)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            with zipfile.ZipFile(self.path) as zf:
                names = set(zf.namelist())
                missing = [k for k in KEYS if k + ".npy" not in names]
                if missing:
                    raise ValueError(f"{self.path}: shard lacks {missing}")
                self.features = _member_memmap(self.path, zf, "features.npy")
                self.labels = _member_memmap(self.path, zf, "labels.npy")
                self.masks_packed = _member_memmap(self.path, zf, "masks.npy")
                self._meta = np.load(zf.open("meta.npy"), allow_pickle=False)
        except zipfile.BadZipFile as exc:
            raise ValueError(f"{self.path}: not a valid shard ({exc})") from None
        n = len(self.labels)
        if len(self.features) != n or len(self.masks_packed) != n or len(self._meta) != n:
            raise ValueError(f"{self.path}: inconsistent frame counts")

    def __len__(self) -> int:
        return len(self.labels)

    def meta(self, i: int) -> dict:
        return json.loads(str(self._meta[i]))

    def masks(self, i: int) -> np.ndarray:
        return np.unpackbits(np.asarray(self.masks_packed[i]), axis=-1).astype(bool)


def valid_shard(path: str | Path, expected_frames: int | None = None) -> bool:
    try:
        r = ShardReader(path)
    except (ValueError, OSError):
        return False
    return expected_frames is None or len(r) == expected_frames

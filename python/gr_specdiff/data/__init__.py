# SPDX-License-Identifier: GPL-3.0-or-later
"""Datasets: sharded writer/reader, the ``specdiff datagen`` builder, splits, torch Dataset."""

from .build import SPLITS, TEST_SEED, build, shard_seed
from .dataset import ConcatFrames, SpectrumDataset, WithRateChannel
from .shards import ShardReader, write_shard

__all__ = ["SPLITS", "TEST_SEED", "ConcatFrames", "ShardReader", "SpectrumDataset",
           "WithRateChannel", "build", "shard_seed", "write_shard"]

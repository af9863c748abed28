# SPDX-License-Identifier: GPL-3.0-or-later
"""SpecDiff model, diffusion sampler, baselines and TorchScript export.

``specdiff.py`` networks, ``diffusion.py`` schedule + DPM-Solver++, ``pipeline.py`` the
scriptable inference pipelines, ``export.py`` TorchScript + model card, ``factory.py`` configs.
"""

from .export import ExportedModel, ModelLoadError, export_model, load_model
from .specdiff import SpecDiff, SpecDiffConfig

__all__ = [
    "ExportedModel",
    "ModelLoadError",
    "SpecDiff",
    "SpecDiffConfig",
    "export_model",
    "load_model",
]

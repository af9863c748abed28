# SPDX-License-Identifier: GPL-3.0-or-later
"""3GPP-faithful synthetic scenes (5G NR, LTE, radar) with channels, impairments and labels.

``generate(rng, sample_rate, frame_seconds, spec, preset) -> Scene`` is the entry point; see
docs/SCENES.md for the signal models, the SNR definition and the label definition.
"""

from .scene import (
    GENERATOR_VERSION,
    PRESETS,
    SUPPORTED_RATES,
    LTESpec,
    NRSpec,
    RadarSpec,
    Scene,
    SceneSpec,
    SignalSpec,
    SignalTruth,
    generate,
    native_rate,
)

__all__ = ["GENERATOR_VERSION", "PRESETS", "SUPPORTED_RATES", "LTESpec", "NRSpec", "RadarSpec",
           "Scene", "SceneSpec", "SignalSpec", "SignalTruth", "generate", "native_rate"]

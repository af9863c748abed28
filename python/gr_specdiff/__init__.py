# SPDX-License-Identifier: GPL-3.0-or-later
"""gr-specdiff: live pixel-wise 5G NR / LTE / radar spectrum segmentation for GNU Radio.

The torch side (scene generator, spectrogram, model, training) imports without GNU Radio;
only ``gr_specdiff.blocks`` imports gnuradio. GNU Radio Companion blocks live in
``gr_specdiff.blocks`` and are re-exported here on first use, so a GRC
``imports: import gr_specdiff`` line and ``gr_specdiff.segmenter(...)`` work.
"""

__version__ = "0.1.0"

#: Class indices of every class map and mask in this package.
CLASSES = ("noise", "NR", "LTE", "radar")
NOISE, NR, LTE, RADAR = range(4)
#: Label value for pixels whose class is undefined (excluded from loss and metrics).
IGNORE = 255
#: Display colour of each class (RGB 0..255): the same in every plot and the live waterfall.
CLASS_COLORS = {NOISE: (0, 0, 0), NR: (40, 220, 60), LTE: (40, 140, 255), RADAR: (255, 60, 40)}
IGNORE_COLOR = (255, 230, 0)
#: What an exported model can compute in: float32 (as trained and measured) or bfloat16
#: (``torch.autocast``: convolutions in bfloat16, faster where the CPU has native bfloat16).
PRECISIONS = ("float32", "bfloat16")

#: GNU Radio blocks re-exported here (GRC: ``import gr_specdiff`` then
#: ``gr_specdiff.segmenter(...)``), imported on first use so that ``import gr_specdiff`` in
#: training / data jobs does not load GNU Radio and Qt.
_BLOCKS = ("segmenter", "waterfall_sink", "scene_source", "sigmf_source",
           "sigmf_annotation_sink")


def __getattr__(name):
    if name in _BLOCKS:
        try:
            from gr_specdiff import blocks
        except ImportError as exc:  # torch-only environments have no GNU Radio
            raise AttributeError(f"gr_specdiff.{name} needs GNU Radio ({exc})") from exc
        return getattr(blocks, name)
    raise AttributeError(f"module 'gr_specdiff' has no attribute {name!r}")

# SPDX-License-Identifier: GPL-3.0-or-later
"""gr-specdiff: live pixel-wise 5G NR / LTE / radar spectrum segmentation for GNU Radio.

The torch side (scene generator, spectrogram, model, training) imports without GNU Radio;
only ``gr_specdiff.blocks`` imports gnuradio. GNU Radio Companion blocks live in
``gr_specdiff.blocks`` and are re-exported here when GNU Radio is available, so a GRC
``imports: import gr_specdiff`` line and ``gr_specdiff.segmenter(...)`` work.
"""

__version__ = "0.1.0"

#: Class indices of every class map and mask in this package.
CLASSES = ("noise", "NR", "LTE", "radar")
NOISE, NR, LTE, RADAR = range(4)
#: Label value for pixels whose class is undefined (excluded from loss and metrics).
IGNORE = 255

try:  # GNU Radio blocks (GRC: ``import gr_specdiff`` then ``gr_specdiff.segmenter(...)``)
    from gr_specdiff.blocks import (  # noqa: F401
        scene_source,
        segmenter,
        sigmf_annotation_sink,
        sigmf_source,
        waterfall_sink,
    )
except ImportError:  # torch-only environments (training) have no GNU Radio
    pass

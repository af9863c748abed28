# SPDX-License-Identifier: GPL-3.0-or-later
"""GNU Radio blocks of gr-specdiff (the only subpackage that imports gnuradio).

One name in four places: ``blocks/<name>.py``, ``class <name>``,
``grc/gr_specdiff_<name>.block.yml`` and GRC id ``gr_specdiff_<name>``.
"""

from gr_specdiff.blocks.scene_source import scene_source
from gr_specdiff.blocks.segmenter import segmenter
from gr_specdiff.blocks.sigmf_annotation_sink import sigmf_annotation_sink
from gr_specdiff.blocks.sigmf_source import sigmf_source

try:  # Qt is optional for headless use (specdiff sense)
    from gr_specdiff.blocks.waterfall_sink import waterfall_sink
except ImportError:  # pragma: no cover - no PyQt5/pyqtgraph
    waterfall_sink = None

__all__ = ["segmenter", "waterfall_sink", "scene_source", "sigmf_source",
           "sigmf_annotation_sink"]

# SPDX-License-Identifier: GPL-3.0-or-later
"""``waterfall_sink``: live Qt waterfall of the segmenter's ``frames`` messages.

The spectrogram (peak dB above the noise floor) scrolls downwards (newest frame on top)
with the class mask blended over it in per-class colours, a legend, an absolute-Hz
frequency axis from the frame metadata, a time axis (seconds before the newest sample),
boxes labelled with class and occupied bandwidth, and controls for overlay opacity,
colour range and pause. Messages arrive on a GNU Radio thread and are handed to the Qt
thread with a queued signal; all drawing happens on the Qt thread. When frames arrive
faster than they are drawn, only the newest ``history`` frames are kept (no backlog).
"""

from __future__ import annotations

import collections
import math
import os
import threading
import time

# GNU Radio's Qt GUI is PyQt5: bind pyqtgraph to it even when PyQt6 is installed too.
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PyQt5")

import numpy as np  # noqa: E402
import pmt  # noqa: E402
import pyqtgraph as pg  # noqa: E402
from gnuradio import gr  # noqa: E402
from PyQt5 import QtCore, QtGui, QtWidgets  # noqa: E402

from gr_specdiff import CLASS_COLORS, CLASSES  # noqa: E402
from gr_specdiff import runtime as rt  # noqa: E402
from gr_specdiff.blocks.pmt_arrays import dict_to_python  # noqa: E402

N = 256


class FrameView:
    """The parts of a ``frames`` message the display needs (validated)."""

    def __init__(self, d: dict):
        cmap = np.asarray(d["class_map"], np.uint8)
        db = np.asarray(d["db_image"], np.float32)
        if cmap.size != N * N or db.size != N * N:
            raise ValueError(f"class_map/db_image must have {N * N} values")
        self.class_map = cmap.reshape(N, N)
        self.db = db.reshape(N, N)
        self.center_freq = float(d.get("center_freq", 0.0))
        self.sample_rate = float(d["sample_rate"])
        if not self.sample_rate > 0:
            raise ValueError("sample_rate must be positive")
        self.rx_time = float(d.get("rx_time", 0.0))
        n = int(d.get("n_samples", 0)) + int(d.get("padded", 0))
        self.duration = n / self.sample_rate if n > 0 else 0.04
        self.dropped = int(d.get("dropped", 0))
        self.latency = float(d.get("latency", 0.0))
        self.boxes = _boxes(d.get("detections"))


#: The detection-table columns the display reads, in the order of a row of ``FrameView.boxes``.
BOX_FIELDS = ("f_lower", "f_upper", "t_start", "t_stop", "class_index")


def _boxes(table) -> np.ndarray:
    """``(n, 5)`` rows of :data:`BOX_FIELDS` from a frame's detection table, largest area
    first; rows with a non-finite value or a class index that is not a signal's are left out."""
    if table is None:
        return np.zeros((0, len(BOX_FIELDS)))
    if not isinstance(table, dict):
        raise ValueError("detections must be a table (a dict of one vector per field, "
                         "docs/BLOCKS.md)")
    missing = [k for k in BOX_FIELDS if k not in table]
    if missing:
        raise ValueError(f"detection table lacks {missing}")
    cols = [np.asarray(table[k], np.float64).ravel() for k in BOX_FIELDS]
    if len({c.size for c in cols}) != 1:
        raise ValueError("detection table columns differ in length")
    b = np.stack(cols, axis=1)
    b = b[np.isfinite(b).all(axis=1) & np.isin(b[:, 4], range(1, len(CLASSES)))]
    area = (b[:, 1] - b[:, 0]) * (b[:, 3] - b[:, 2])
    return b[np.argsort(-area, kind="stable")]


class WaterfallWidget(QtWidgets.QWidget):
    """The Qt widget; :meth:`show_frame` must run on the Qt thread."""

    frame_ready = QtCore.pyqtSignal()
    MAX_BOXES = 40  # per frame
    MAX_LABELS = 6  # per frame

    def __init__(self, title="SpecDiff", history=4, opacity=0.45, db_min=0.0, db_max=40.0,
                 show_boxes=True, parent=None, max_fps=10.0):
        super().__init__(parent)
        self.history = max(1, int(history))
        # Cap the redraw rate so the display does not take the cores the model needs (a draw
        # and paint is ~5 ms, and pyqtgraph's Python holds the GIL); frames in between are
        # coalesced.
        self.min_draw_interval = 1.0 / max_fps if max_fps and max_fps > 0 else 0.0
        self._last_draw = -math.inf
        self._draw_timer = QtCore.QTimer(self)
        self._draw_timer.setSingleShot(True)
        self._draw_timer.timeout.connect(self._drain)
        self.opacity = float(opacity)
        self.db_range = (float(db_min), float(db_max))
        self.show_boxes = bool(show_boxes)
        self.paused = False
        self.frames: collections.deque = collections.deque(maxlen=self.history)
        self._pending: collections.deque = collections.deque(maxlen=self.history)
        self._pending_lock = threading.Lock()
        self.n_shown = 0

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground("k")
        self.plot = self.glw.addPlot(title=title)
        self.plot.setLabel("bottom", "frequency", units="Hz")
        self.plot.setLabel("left", "time", units="s")
        self.plot.setMouseEnabled(x=True, y=False)
        self.image = pg.ImageItem(axisOrder="row-major", autoDownsample=True)
        self.plot.addItem(self.image)
        # Boxes: one path item per class and a fixed pool of labels, made once. Adding and
        # removing a graphics item per box on every draw cost ~11 of a 17 ms draw with ~120
        # detections a frame (benchmarks/bench_waterfall.py).
        self._box_paths = {}
        for c in range(1, len(CLASSES)):
            pen = QtGui.QPen(QtGui.QColor(*CLASS_COLORS[c]))
            pen.setCosmetic(True)
            pen.setWidth(2)
            item = QtWidgets.QGraphicsPathItem()
            item.setPen(pen)
            self.plot.addItem(item)
            self._box_paths[c] = item
        self._labels = []
        for _ in range(self.MAX_LABELS * self.history):
            text = pg.TextItem(anchor=(0, 0))
            text.hide()
            self.plot.addItem(text)
            self._labels.append(text)
        layout.addWidget(self.glw, 1)

        bar = QtWidgets.QHBoxLayout()
        for c in range(1, len(CLASSES)):
            chip = QtWidgets.QLabel(f"  {CLASSES[c]}  ")
            r, g, b = CLASS_COLORS[c]
            chip.setStyleSheet(f"background-color: rgb({r},{g},{b}); color: black;"
                               "font-weight: bold;")
            bar.addWidget(chip)
        bar.addWidget(QtWidgets.QLabel("overlay"))
        self.opacity_slider = QtWidgets.QSlider(QtCore.Qt.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(int(round(self.opacity * 100)))
        self.opacity_slider.setMinimumWidth(100)
        self.opacity_slider.setMaximumWidth(140)
        self.opacity_slider.valueChanged.connect(self._set_opacity)
        bar.addWidget(self.opacity_slider)
        bar.addWidget(QtWidgets.QLabel("dB"))
        self.min_spin = QtWidgets.QDoubleSpinBox()
        self.max_spin = QtWidgets.QDoubleSpinBox()
        for spin, val in ((self.min_spin, db_min), (self.max_spin, db_max)):
            spin.setRange(-10.0, 50.0)
            spin.setValue(float(val))
            spin.valueChanged.connect(self._set_range)
            bar.addWidget(spin)
        self.pause_box = QtWidgets.QCheckBox("pause")
        self.pause_box.toggled.connect(self._set_paused)
        bar.addWidget(self.pause_box)
        self.status = QtWidgets.QLabel("waiting for frames")
        bar.addWidget(self.status, 1)
        layout.addLayout(bar)
        self.frame_ready.connect(self._drain, QtCore.Qt.QueuedConnection)

    # -------------------------------------------------------------- any thread
    def post(self, frame: FrameView) -> None:
        """Queue a frame from any thread; the Qt thread draws it."""
        with self._pending_lock:
            first = not self._pending
            self._pending.append(frame)
        if first:
            self.frame_ready.emit()

    # -------------------------------------------------------------- Qt thread
    def _drain(self):
        wait = self._last_draw + self.min_draw_interval - time.monotonic()
        if wait > 0:  # drawn recently: the timer drains what is pending then
            if not self._draw_timer.isActive():
                self._draw_timer.start(int(math.ceil(wait * 1e3)))
            return
        with self._pending_lock:
            frames = list(self._pending)
            self._pending.clear()
        if self.paused or not frames:
            return
        for f in frames:
            self.frames.append(f)
        self.n_shown += len(frames)
        self._last_draw = time.monotonic()
        self.redraw()

    def show_frame(self, frame: FrameView) -> None:
        self.frames.append(frame)
        self.n_shown += 1
        self.redraw()

    def _set_opacity(self, value):
        self.opacity = value / 100.0
        self.redraw()

    def _set_range(self, _value=None):
        self.db_range = (self.min_spin.value(), self.max_spin.value())
        self.redraw()

    def _set_paused(self, paused):
        self.paused = bool(paused)

    def _rgb(self, f: FrameView) -> np.ndarray:
        """A frame's RGB (cached until opacity or colour range change)."""
        key = (self.opacity, self.db_range)
        if getattr(f, "_rgb_key", None) != key:
            if getattr(self, "_lut_key", None) != self.opacity:
                self._lut, self._lut_key = rt.overlay_lut(self.opacity), self.opacity
            f._rgb = rt.blend_overlay(f.db, f.class_map, self.opacity, self.db_range,
                                      lut=self._lut)
            f._rgb_key = key
        return f._rgb

    def redraw(self):
        if not self.frames:
            return
        newest = self.frames[-1]
        fc, fs = newest.center_freq, newest.sample_rate
        t_total = sum(f.duration for f in self.frames)
        # Oldest row first: the image's y runs from -t_total up to 0 (the newest sample).
        # Levels stay explicit: auto-downsampling to a small window yields float pixels.
        self.image.setImage(np.concatenate([self._rgb(f) for f in self.frames]),
                            autoLevels=False, levels=(0, 255))
        self.image.setRect(QtCore.QRectF(fc - fs / 2, -t_total, fs, t_total))
        self.plot.setXRange(fc - fs / 2, fc + fs / 2, padding=0)
        self.plot.setYRange(-t_total, 0, padding=0)
        self._draw_boxes()
        self.status.setText(
            f"{fc / 1e6:.3f} MHz  {fs / 1e6:g} MS/s  frames {self.n_shown}  "
            f"dropped {newest.dropped}  latency {newest.latency * 1e3:.0f} ms")

    def _draw_boxes(self):
        """Per class one path of rectangles; the largest detections of each frame get boxes,
        the few largest a label. The frames are drawn edge to edge even when frames were
        dropped between them, so each box is placed relative to its own frame's band."""
        paths = {c: QtGui.QPainterPath() for c in self._box_paths}
        labels = []
        band_top = 0.0  # y of the newest sample of the frame being placed
        for f in reversed(self.frames) if self.show_boxes else ():
            t_end = f.rx_time + f.duration - band_top  # stream time shown at y = 0
            band_top -= f.duration
            for k, (f0, f1, t0, t1, ci) in enumerate(f.boxes[:self.MAX_BOXES].tolist()):
                ci = int(ci)  # one of paths' keys: _boxes keeps coloured classes only
                x0, x1 = f.center_freq + f0, f.center_freq + f1
                y0, y1 = t0 - t_end, t1 - t_end
                paths[ci].addRect(QtCore.QRectF(x0, y0, x1 - x0, y1 - y0))
                if (k < self.MAX_LABELS and (x1 - x0) > 0.03 * f.sample_rate
                        and (y1 - y0) > 0.1 * f.duration):
                    labels.append((f"{CLASSES[ci]} {(x1 - x0) / 1e6:.2f} MHz",
                                   CLASS_COLORS[ci], x0, y1))
        for c, item in self._box_paths.items():
            item.setPath(paths[c])
        for text, spec in zip(self._labels, labels + [None] * len(self._labels)):
            if spec is None:
                text.hide()
                continue
            words, color, x, y = spec
            if (words, color) != getattr(text, "_shown", None):  # re-layout only on change
                text.setText(words, color=color)
                text._shown = (words, color)
            text.setPos(x, y)
            text.show()

    def drawn_boxes(self) -> dict:
        """Rectangles drawn per class index and the visible label texts (for tests)."""
        rects = {c: item.path().toSubpathPolygons() for c, item in self._box_paths.items()}
        return {"boxes": {c: len(r) for c, r in rects.items()},
                "labels": [t.textItem.toPlainText() for t in self._labels if t.isVisible()]}

    def grab_png(self, path) -> bool:
        """Render the widget (works offscreen) and save it as a PNG."""
        return self.grab().save(str(path), "PNG")

    def view_to_widget(self, x: float, y: float) -> QtCore.QPoint:
        """Widget pixel of data coordinates (x Hz, y s) (tests, screenshots)."""
        scene_pt = self.plot.getViewBox().mapViewToScene(QtCore.QPointF(x, y))
        view_pt = self.glw.mapFromScene(scene_pt)
        return self.glw.mapTo(self, view_pt)


class waterfall_sink(gr.basic_block):
    """Qt waterfall of ``frames`` messages (see module docstring). Malformed messages are
    logged and dropped."""

    IN_PORT = pmt.intern("frames")

    def __init__(self, title="SpecDiff", history=4, opacity=0.45, db_min=0.0, db_max=40.0,
                 show_boxes=True, parent=None, max_fps=10.0):
        gr.basic_block.__init__(self, name="specdiff_waterfall_sink", in_sig=None,
                                out_sig=None)
        if int(history) < 1:
            raise ValueError(f"history must be >= 1 frame, got {history}")
        if not 0.0 <= float(opacity) <= 1.0:
            raise ValueError(f"opacity must be in [0, 1], got {opacity}")
        if not float(db_min) < float(db_max):
            raise ValueError(f"db_min ({db_min}) must be below db_max ({db_max})")
        if float(max_fps) < 0:
            raise ValueError(f"max_fps must be >= 0 (0: no limit), got {max_fps}")
        self.widget = WaterfallWidget(title, history, opacity, db_min, db_max, show_boxes,
                                      parent, max_fps=float(max_fps))
        self.n_dropped = 0
        self.message_port_register_in(self.IN_PORT)
        self.set_msg_handler(self.IN_PORT, self.handle_msg)

    def handle_msg(self, msg):
        try:
            frame = FrameView(dict_to_python(msg))
        except Exception as exc:  # noqa: BLE001 - log and drop
            self.n_dropped += 1
            self.logger.warn(f"dropped malformed frame message ({exc})")
            return
        self.widget.post(frame)

    def getWidget(self):  # noqa: N802 - GNU Radio Qt block convention
        return self.widget

    def qwidget(self):
        return self.widget

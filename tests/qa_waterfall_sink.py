#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""QA for gr_specdiff.waterfall_sink: renders offscreen to a PNG with the overlay colours
where the class mask says (QT_QPA_PLATFORM=offscreen)."""

import os
import sys
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pmt  # noqa: E402
from gnuradio import gr_unittest  # noqa: E402
from PyQt5 import QtGui, QtWidgets  # noqa: E402

from gr_specdiff.blocks import waterfall_sink  # noqa: E402
from gr_specdiff.blocks.waterfall_sink import (  # noqa: E402
    BOX_FIELDS,
    FrameView,
    WaterfallWidget,
    dict_to_python,
)

APP = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv)
RATE, FC = 20e6, 2.6e9


def table(dets):
    """A detection table (one vector per field) holding ``dets``; missing fields are NaN."""
    return {k: np.array([d.get(k, np.nan) for d in dets], np.float64) for k in BOX_FIELDS}


def frame_msg(index=0):
    cmap = np.zeros((256, 256), np.uint8)
    cmap[:, 20:80] = 1  # NR
    cmap[100:200, 150:230] = 2  # LTE
    db = np.full((256, 256), 5.0, np.float32)
    db[cmap > 0] = 30.0
    col_w = RATE / 256
    det = {"class": "NR", "class_index": 1, "f_lower": (20 - 128.5) * col_w,
           "f_upper": (79 - 128 + 0.5) * col_w, "t_start": index * 0.04,
           "t_stop": index * 0.04 + 0.04, "sample_start": 0, "sample_count": 800000}
    return pmt.to_pmt({"frame": index, "offset": index * 800000, "n_samples": 800000,
                       "padded": 0, "rx_time": index * 0.04, "center_freq": FC,
                       "sample_rate": RATE, "class_map": cmap.ravel(),
                       "db_image": db.ravel(), "dropped": 0, "latency": 0.01,
                       "detections": table([det])})


class qa_waterfall_sink(gr_unittest.TestCase):

    def test_001_overlay_colours_where_mask_says(self):
        blk = waterfall_sink(history=1, opacity=0.6, db_min=0, db_max=40)
        w = blk.getWidget()
        w.resize(900, 600)
        w.show()
        blk.handle_msg(frame_msg(0))
        for _ in range(5):
            APP.processEvents()
        self.assertEqual(w.n_shown, 1)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "waterfall.png")
            self.assertTrue(w.grab_png(path))
            img = QtGui.QImage(path)
            if os.environ.get("SPECDIFF_KEEP_PNG"):
                img.save(os.environ["SPECDIFF_KEEP_PNG"])
        col_w = RATE / 256

        def rgb_at(col, row):
            # centre of pixel (row, col) of the newest frame: y = -(row + 0.5)/256 * 0.04
            x = FC + (col - 128) * col_w
            y = -(255 - row + 0.5) / 256 * 0.04
            p = w.view_to_widget(x, y)
            c = img.pixelColor(p.x(), p.y())
            return c.red(), c.green(), c.blue()

        r, g, b = rgb_at(50, 30)  # NR: green
        self.assertGreater(g, r + 60)
        self.assertGreater(g, b + 60)
        r, g, b = rgb_at(190, 150)  # LTE: blue
        self.assertGreater(b, r + 60)
        r, g, b = rgb_at(190, 30)  # noise: grey
        self.assertLess(max(r, g, b) - min(r, g, b), 10)
        w.close()

    def test_002_malformed_dropped_and_pause(self):
        blk = waterfall_sink(history=2)
        for bad in (pmt.intern("x"), pmt.to_pmt({"class_map": np.zeros(3, np.uint8)}),
                    pmt.PMT_NIL, pmt.to_pmt({"sample_rate": 1.0})):
            blk.handle_msg(bad)
        self.assertEqual(blk.n_dropped, 4)
        w = blk.getWidget()
        w.pause_box.setChecked(True)
        blk.handle_msg(frame_msg(0))
        APP.processEvents()
        self.assertEqual(w.n_shown, 0)
        w.pause_box.setChecked(False)
        for i in range(5):  # coalesced: only `history` frames are kept
            blk.handle_msg(frame_msg(i))
        APP.processEvents()
        self.assertEqual(len(w.frames), 2)
        self.assertEqual(w.frames[-1].rx_time, 0.16)

    def test_004_redraw_rate_capped(self):
        """At most max_fps draws a second; frames arriving in between are drawn together by
        the timer, none is lost from the history."""
        import time

        blk = waterfall_sink(history=4, max_fps=5)
        w = blk.getWidget()
        draws = []
        w.redraw = lambda: draws.append(len(w.frames))
        blk.handle_msg(frame_msg(0))
        APP.processEvents()
        self.assertEqual(draws, [1])  # the first frame is drawn at once
        for i in range(1, 4):
            blk.handle_msg(frame_msg(i))
            APP.processEvents()
        self.assertEqual(draws, [1])  # within 0.2 s of the last draw: held back
        deadline = time.monotonic() + 2.0
        while len(draws) < 2 and time.monotonic() < deadline:
            APP.processEvents()
            time.sleep(0.01)
        self.assertEqual(draws, [1, 4])  # the timer drew the three held frames together
        self.assertEqual(w.n_shown, 4)

    def test_005_boxes_and_labels_follow_the_frames(self):
        """Every frame's detections are drawn as boxes of their class; a detection with a
        missing value is skipped; a later draw shows only what the frames in the history
        hold; a table without a needed column is refused with its name."""
        w = WaterfallWidget(history=2, max_fps=0)
        col_w = RATE / 256

        def view(index, dets):
            d = dict_to_python(frame_msg(index))
            d["detections"] = table(dets)
            return FrameView(d)

        def det(cls, ci, c0, c1, t0=0.0, t1=0.04):
            return {"class": cls, "class_index": ci, "f_lower": (c0 - 128) * col_w,
                    "f_upper": (c1 - 128) * col_w, "t_start": t0, "t_stop": t1}

        many = [det("NR", 1, 20, 80), det("LTE", 2, 150, 230, 0.01, 0.03),
                det("radar", 3, 100, 102, 0.0, 0.001), {"class_index": 1}]
        w.show_frame(view(0, many))
        drawn = w.drawn_boxes()
        self.assertEqual(drawn["boxes"], {1: 1, 2: 1, 3: 1})
        self.assertEqual(sorted(drawn["labels"]), ["LTE 6.25 MHz", "NR 4.69 MHz"])
        w.show_frame(view(1, [det("NR", 1, 20, 80, 0.04, 0.08)]))
        self.assertEqual(w.drawn_boxes()["boxes"], {1: 2, 2: 1, 3: 1})
        w.show_frame(view(2, []))  # frame 0 leaves the 2-frame history
        drawn = w.drawn_boxes()
        self.assertEqual(drawn["boxes"], {1: 1, 2: 0, 3: 0})
        self.assertEqual(drawn["labels"], ["NR 4.69 MHz"])
        d = dict_to_python(frame_msg(3))
        del d["detections"]["t_stop"]
        with self.assertRaisesRegex(ValueError, "t_stop"):
            FrameView(d)

    def test_006_boxes_stay_on_their_frame_when_frames_were_dropped(self):
        """Frames are drawn edge to edge; a box belongs inside its own frame's band even when
        the stream skipped frames between them (a slow model drops frames)."""
        w = WaterfallWidget(history=2, max_fps=0)
        for rx_time in (0.0, 1.0):  # 24 frames dropped in between
            d = dict_to_python(frame_msg(0))
            d["rx_time"] = rx_time
            d["detections"] = table([{"class_index": 1, "f_lower": -1e6, "f_upper": 1e6,
                                      "t_start": rx_time + 0.01, "t_stop": rx_time + 0.02}])
            w.show_frame(FrameView(d))
        ys = sorted(round(poly.boundingRect().top(), 6)
                    for poly in w._box_paths[1].path().toSubpathPolygons())
        # newest frame spans y in [-0.04, 0], the older one [-0.08, -0.04]
        self.assertEqual(ys, [-0.07, -0.03])

    def test_007_small_window_paints(self):
        """A window smaller than the history makes pyqtgraph downsample the image to float
        pixels; painting must still work (it raised inside paint() without levels)."""
        errors = []
        hook, sys.excepthook = sys.excepthook, lambda *exc: errors.append(exc[1])
        try:
            w = WaterfallWidget(history=4, max_fps=0)
            w.resize(320, 240)
            w.show()
            for i in range(4):
                w.show_frame(FrameView(dict_to_python(frame_msg(i))))
            APP.processEvents()
            self.assertFalse(w.grab().isNull())
            APP.processEvents()
        finally:
            sys.excepthook = hook
        self.assertEqual(errors, [])
        w.close()

    def test_003_bad_parameters(self):
        with self.assertRaises(ValueError):
            waterfall_sink(history=0)
        with self.assertRaises(ValueError):
            waterfall_sink(opacity=2)
        with self.assertRaises(ValueError):
            waterfall_sink(db_min=10, db_max=0)
        with self.assertRaises(ValueError):
            waterfall_sink(max_fps=-1)


if __name__ == "__main__":
    gr_unittest.run(qa_waterfall_sink)

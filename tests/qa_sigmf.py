#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""QA for sigmf_source and sigmf_annotation_sink, and `specdiff sense` on SigMF files."""

import json
import os
import sys
import tempfile
import time

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest
from sigmf import SigMFFile, sigmffile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runtime_fixtures import export_threshold_model, tone_frames  # noqa: E402

from gr_specdiff.blocks import segmenter, sigmf_annotation_sink, sigmf_source  # noqa: E402

RATE, FC, FRAME = 1e6, 915e6, 1500


def write_recording(base, iq, fmt="cf32_le", rate=RATE, freq=FC, datetime=None):
    """A SigMF recording in ``fmt`` (full-scale conversion as SDR recorders do)."""
    if fmt == "cf32_le":
        raw = iq.astype(np.complex64).view(np.float32)
    elif fmt == "ci16_le":
        raw = np.clip(np.round(iq.view(np.float32) * 32767), -32768, 32767).astype("<i2")
    elif fmt == "ci8":
        raw = np.clip(np.round(iq.view(np.float32) * 127), -128, 127).astype(np.int8)
    elif fmt == "cu8":
        raw = np.clip(np.round(iq.view(np.float32) * 127 + 128), 0, 255).astype(np.uint8)
    data = base + ".sigmf-data"
    raw.tofile(data)
    meta = SigMFFile(data_file=data, global_info={
        "core:datatype": fmt, "core:sample_rate": rate, "core:version": "1.0.0"})
    cap = {"core:frequency": freq}
    if datetime:
        cap["core:datetime"] = datetime
    meta.add_capture(0, metadata=cap)
    meta.tofile(base + ".sigmf-meta", skip_validate=True)
    return base + ".sigmf-meta"


class qa_sigmf(gr_unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.model = str(export_threshold_model(os.path.join(self.dir, "m.ts"),
                                                frame_seconds=FRAME / RATE))
        self.iq = (0.05 * tone_frames(2 * FRAME + 400, RATE, 200e3, burst=(1600, 2600))
                   ).astype(np.complex64)

    def tearDown(self):
        self.tmp.cleanup()

    def test_001_source_tags_and_samples(self):
        meta = write_recording(os.path.join(self.dir, "rec"), self.iq,
                               datetime="2026-01-02T03:04:05.5Z")
        tb = gr.top_block()
        src = sigmf_source(meta)
        sink = blocks.vector_sink_c()
        tb.connect(src, sink)
        tb.run()
        np.testing.assert_array_equal(np.array(sink.data(), np.complex64), self.iq)
        tags = {(t.offset, t.key): t.value for t in map(gr.tag_to_python, sink.tags())}
        self.assertEqual(tags[(0, "rx_rate")], RATE)
        self.assertEqual(tags[(0, "rx_freq")], FC)
        secs, frac = tags[(0, "rx_time")]
        self.assertEqual(secs, 1767323045)
        self.assertAlmostEqual(frac, 0.5)
        self.assertIn((len(self.iq) - 1, "specdiff_eos"), tags)

    def test_002_formats_read_full_scale(self):
        for fmt, tol in (("ci16_le", 1e-4), ("ci8", 1e-2), ("cu8", 1e-2)):
            meta = write_recording(os.path.join(self.dir, fmt), self.iq, fmt)
            src = sigmf_source(meta)
            x = src.meta.read_samples(0, 100)
            np.testing.assert_allclose(x, self.iq[:100], atol=tol, err_msg=fmt)
        raw = os.path.join(self.dir, "raw.ci8")
        np.clip(np.round(self.iq.view(np.float32) * 127), -128, 127).astype(np.int8).tofile(raw)
        src = sigmf_source(raw, datatype="ci8", samp_rate=RATE, center_freq=FC)
        self.assertEqual(src.n_samples, len(self.iq))
        with self.assertRaisesRegex(ValueError, "format"):
            sigmf_source(raw)
        with self.assertRaisesRegex(ValueError, "not found"):
            sigmf_source(os.path.join(self.dir, "nope.sigmf-meta"))

    def test_003_round_trip_annotations(self):
        meta = write_recording(os.path.join(self.dir, "rec"), self.iq)
        out_meta = os.path.join(self.dir, "out", "rec.sigmf-meta")
        tb = gr.top_block()
        src = sigmf_source(meta)
        seg = segmenter(self.model, device="cpu", samp_rate=RATE, policy="block",
                        occupancy=False)
        ann = sigmf_annotation_sink(out_meta, recording=meta)
        # the same detections, taken from the frames messages' detection tables
        ann_frames = sigmf_annotation_sink(os.path.join(self.dir, "frames.sigmf-meta"))
        dbg = blocks.message_debug()
        tb.connect(src, seg)
        tb.msg_connect(seg, "detections", ann, "detections")
        tb.msg_connect(seg, "frames", ann_frames, "detections")
        tb.msg_connect(seg, "detections", dbg, "store")
        tb.run()
        time.sleep(0.1)
        ann.flush()
        dets = [pmt.to_python(dbg.get_message(i)) for i in range(dbg.num_messages())]
        self.assertTrue(dets)
        self.assertEqual(ann_frames.annotations, ann.annotations)
        self.assertEqual(ann_frames.n_dropped, 0)
        # the output is valid SigMF (read back by the sigmf package, with a data file)
        os.link(meta.replace(".sigmf-meta", ".sigmf-data"),
                out_meta.replace(".sigmf-meta", ".sigmf-data"))
        back = sigmffile.fromfile(out_meta)
        anns = back.get_annotations()
        self.assertEqual(len(anns), len(dets))
        self.assertEqual(back.get_global_field("core:sample_rate"), RATE)
        main = max(anns, key=lambda a: a["core:sample_count"])
        self.assertEqual(main["core:label"], "NR")
        self.assertLessEqual(main["core:freq_lower_edge"], FC + 200e3)
        self.assertGreaterEqual(main["core:freq_upper_edge"], FC + 200e3)
        for a in anns:
            self.assertIn("specdiff:confidence", a)
            self.assertLessEqual(a["core:sample_start"] + a["core:sample_count"], len(self.iq))
        # malformed messages are logged and dropped
        for bad in (pmt.intern("x"), pmt.to_pmt({"class": "NR"}), pmt.PMT_NIL):
            ann.handle_msg(bad)
        self.assertEqual(ann.n_dropped, 3)

    def test_004_sense_short_and_partial_recordings(self):
        from gr_specdiff.commands.sense import analyse

        for n, fmt in ((len(self.iq), "cf32_le"), (900, "cu8"), (2000, "ci16_le")):
            meta = write_recording(os.path.join(self.dir, f"r{n}"), self.iq[:n], fmt)
            lines = []
            res = analyse(meta, self.model, "cpu", os.path.join(self.dir, "sense"),
                          log=lines.append)
            text = "\n".join(lines)
            self.assertEqual(len(res["frames"]), -(-n // FRAME), text)
            self.assertIn("padded", text)
            self.assertTrue(os.path.getsize(res["png"]) > 1000)
            with open(res["meta"]) as f:
                out = json.load(f)
            self.assertEqual(out["global"]["core:datatype"], fmt)
            self.assertEqual(len(out["annotations"]), len(res["detections"]))


if __name__ == "__main__":
    gr_unittest.run(qa_sigmf)

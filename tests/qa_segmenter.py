#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""QA for gr_specdiff.segmenter (runs under ctest and pytest)."""

import os
import sys
import tempfile
import time

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runtime_fixtures import (  # noqa: E402
    InProcessModel,
    SlowModel,
    export_threshold_model,
    tone_frames,
)

from gr_specdiff.blocks import segmenter  # noqa: E402

RATE = 1e6
FRAME = 1500  # samples: frame_seconds 0.0015 at 1 MS/s (odd, not a power of two)


class chunker(gr.sync_block):
    """Passes at most ``k`` samples per work() call (forces a chunking)."""

    def __init__(self, k):
        gr.sync_block.__init__(self, "chunker", [np.complex64], [np.complex64])
        self.k = k

    def work(self, input_items, output_items):
        n = min(self.k, len(input_items[0]), len(output_items[0]))
        output_items[0][:n] = input_items[0][:n]
        return n


def frames_of(dbg):
    return [pmt.to_python(dbg.get_message(i)) for i in range(dbg.num_messages())]


def run_segmenter(data, model, chunk=None, tags=(), policy="block", **kw):
    tb = gr.top_block()
    src = blocks.vector_source_c(data.tolist(), False, 1, list(tags))
    kw.setdefault("frame_seconds", FRAME / RATE)
    seg = segmenter(model, samp_rate=RATE, policy=policy, **kw)
    fr, det = blocks.message_debug(), blocks.message_debug()
    tb.msg_connect(seg, "frames", fr, "store")
    tb.msg_connect(seg, "detections", det, "store")
    head = src
    if chunk:
        ch = chunker(chunk)
        tb.connect(src, ch)
        head = ch
    tb.connect(head, seg)
    sinks = []
    n_out = 4 if seg.passthrough else (3 if seg.occupancy_enabled else 0)
    for port in range(n_out):
        sink = blocks.vector_sink_c() if port == 3 else blocks.vector_sink_f(256)
        tb.connect((seg, port), sink)
        sinks.append(sink)
    tb.run()
    time.sleep(0.05)
    return seg, frames_of(fr), frames_of(det), sinks


def make_tag(offset, key, value):
    return gr.tag_utils.python_to_tag((offset, pmt.intern(key), value))


class qa_segmenter(gr_unittest.TestCase):

    def setUp(self):
        self.data = tone_frames(3 * FRAME + 700, RATE, 200e3, burst=(1600, 2400))

    def test_001_frame_alignment(self):
        ref = None
        for chunk in (1, 1000, 4096, 37, 1499):
            data = self.data if chunk != 1 else self.data[: 2 * FRAME + 11]
            _, frames, _, _ = run_segmenter(data, InProcessModel(frame_seconds=FRAME / RATE),
                                            chunk=chunk, occupancy=False)
            self.assertEqual([f["offset"] for f in frames],
                             [i * FRAME for i in range(len(data) // FRAME)], f"chunk {chunk}")
            maps = [f["class_map"] for f in frames]
            if ref is None:
                ref = maps
            for a, b in zip(ref, maps):
                np.testing.assert_array_equal(a, b)

    def test_002_tags_in_and_out(self):
        tags = [make_tag(0, "rx_freq", pmt.from_double(2.4e9)),
                make_tag(0, "rx_time", pmt.make_tuple(pmt.from_uint64(100),
                                                      pmt.from_double(0.25))),
                make_tag(10, "custom", pmt.from_long(7))]
        seg, frames, dets, sinks = run_segmenter(
            self.data, InProcessModel(frame_seconds=FRAME / RATE), tags=tags,
            passthrough=True, occupancy=True)
        self.assertEqual(len(frames), 3)
        for i, f in enumerate(frames):
            self.assertEqual(f["center_freq"], 2.4e9)
            self.assertAlmostEqual(f["rx_time"], 100.25 + i * FRAME / RATE, places=9)
        iq, occ = sinks[3], sinks[:3]
        self.assertEqual(len(iq.data()), 3 * FRAME)
        np.testing.assert_array_equal(np.array(iq.data()), self.data[: 3 * FRAME])
        out_tags = [gr.tag_to_python(t) for t in iq.tags()]
        self.assertIn((10, "custom", 7), [(t.offset, t.key, t.value) for t in out_tags])
        det_tags = [t for t in out_tags if t.key == "specdiff_detection"]
        self.assertTrue(det_tags)
        self.assertEqual(sorted(t.offset for t in det_tags),
                         sorted(d["sample_start"] for d in dets))
        # the burst starts at sample 1600: a tag within one FFT length (256) of it
        self.assertTrue(any(abs(t.offset - 1600) <= 256 for t in det_tags))
        for sink in occ:
            self.assertEqual(len(sink.data()), 3 * 256)
            t = [gr.tag_to_python(x) for x in sink.tags()]
            times = {x.offset: x.value for x in t if x.key == "rx_time"}
            self.assertEqual(sorted(times), [0, 1, 2])
            freqs = [x.value for x in t if x.key == "rx_freq"]
            self.assertEqual(freqs, [2.4e9] * 3)
        nr = np.array(occ[0].data()).reshape(3, 256)
        self.assertGreater(nr[1].max(), 0.1)  # tone burst in frame 1
        self.assertEqual(nr[0].max(), 0.0)

    def test_003_drop_never_blocks(self):
        n_frames = 20
        data = tone_frames(n_frames * FRAME, RATE)
        model = SlowModel(0.2, frame_seconds=FRAME / RATE)
        t0 = time.monotonic()
        seg, frames, _, _ = run_segmenter(data, model, policy="drop", queue_depth=1,
                                          occupancy=False)
        elapsed = time.monotonic() - t0
        self.assertLess(elapsed, n_frames * 0.2 / 2, "upstream was blocked by the model")
        self.assertGreater(seg.dropped_frames(), n_frames // 2)
        self.assertLessEqual(seg.dropped_frames() + seg.processed_frames(), n_frames)
        self.assertGreaterEqual(seg.dropped_frames() + seg.processed_frames(), n_frames - 2)
        if frames:
            self.assertLessEqual(frames[-1]["dropped"], seg.dropped_frames())

    def test_004_block_deterministic(self):
        runs = []
        for _ in range(2):
            model = SlowModel(0.02, frame_seconds=FRAME / RATE)
            seg, frames, dets, _ = run_segmenter(self.data, model, policy="block",
                                                 queue_depth=1, occupancy=False)
            self.assertEqual(seg.dropped_frames(), 0)
            self.assertEqual(len(frames), 3)
            runs.append((frames, dets))
        for a, b in zip(runs[0][0], runs[1][0]):
            np.testing.assert_array_equal(a["class_map"], b["class_map"])
        self.assertEqual(
            [(d["sample_start"], d["f_lower"]) for d in runs[0][1]],
            [(d["sample_start"], d["f_lower"]) for d in runs[1][1]])

    def test_005_message_schema(self):
        _, frames, dets, _ = run_segmenter(self.data, InProcessModel(frame_seconds=FRAME / RATE),
                                           occupancy=False, send_confidence=True)
        f = frames[1]
        for key, typ in (("frame", int), ("offset", int), ("rx_time", float),
                         ("center_freq", float), ("sample_rate", float), ("latency", float),
                         ("dropped", int), ("nonfinite", int), ("n_samples", int)):
            self.assertIsInstance(f[key], typ, key)
        self.assertEqual(f["class_map"].dtype, np.uint8)
        self.assertEqual(f["class_map"].shape, (256 * 256,))
        self.assertEqual(f["db_image"].dtype, np.float32)
        self.assertEqual(f["confidence"].shape, (256 * 256,))
        self.assertEqual(list(f["classes"]), ["noise", "NR", "LTE", "radar"])
        self.assertTrue(dets)
        d = max(dets, key=lambda x: x["sample_count"] * x["bandwidth"])
        for key in ("class", "f_lower", "f_upper", "freq_lower_edge", "freq_upper_edge",
                    "t_start", "t_stop", "sample_start", "sample_count", "confidence",
                    "snr_db"):
            self.assertIn(key, d)
        self.assertEqual(d["class"], "NR")
        # the frames' detection tables hold exactly the per-detection messages
        from gr_specdiff import runtime as rt
        rows = [r for fr in frames for r in rt.detection_rows(fr["detections"], fr["classes"])]
        self.assertEqual(rows, dets)
        # tone at +200 kHz: the box covers it
        self.assertLessEqual(d["f_lower"], 200e3)
        self.assertGreaterEqual(d["f_upper"], 200e3)
        self.assertGreater(d["snr_db"], 10)

    def test_013_no_detection_dicts_without_a_taker(self):
        """Per-detection dicts (~35 us each, on the model's thread) are only built when the
        detections port is connected or pass-through tags need them."""
        segmod = sys.modules[segmenter.__module__]  # the package exports the class by that name
        built = []
        real = segmod.detection_pmt
        segmod.detection_pmt = lambda d, fc: built.append(d) or real(d, fc)
        try:
            tb = gr.top_block()
            seg = segmenter(InProcessModel(frame_seconds=FRAME / RATE), samp_rate=RATE,
                            occupancy=False, policy="block")
            fr = blocks.message_debug()
            tb.msg_connect(seg, "frames", fr, "store")
            tb.connect(blocks.vector_source_c(self.data.tolist()), seg)
            tb.run()
            frames = frames_of(fr)
        finally:
            segmod.detection_pmt = real
        self.assertEqual(len(frames), 3)
        self.assertGreater(len(frames[1]["detections"]["class_index"]), 0)
        self.assertEqual(built, [])

    def test_006_malformed_messages_dropped(self):
        tb = gr.top_block()
        seg = segmenter(InProcessModel(frame_seconds=FRAME / RATE), samp_rate=RATE,
                        occupancy=False)
        src = blocks.vector_source_c(self.data.tolist())
        tb.connect(src, seg)
        tb.start()
        for bad in (pmt.intern("garbage"), pmt.PMT_NIL, pmt.to_pmt({"freq": "x"}),
                    pmt.to_pmt({"other": 1}), pmt.cons(pmt.PMT_NIL, pmt.PMT_T)):
            seg.to_basic_block()._post(pmt.intern("command"), bad)
        seg.to_basic_block()._post(pmt.intern("command"), pmt.to_pmt({"freq": 1e9}))
        time.sleep(0.2)
        tb.stop()
        tb.wait()
        self.assertEqual(seg.center_freq, 1e9)

    def test_007_rate_mismatch(self):
        with self.assertRaisesRegex(ValueError, "does not match the model"):
            segmenter(InProcessModel(frame_seconds=FRAME / RATE), samp_rate=2e6)
        seg = segmenter(InProcessModel(frame_seconds=FRAME / RATE), samp_rate=2e6,
                        strict_rate=False)
        self.assertEqual(seg.frame_len, 3000)
        # an rx_rate tag to an unsupported rate: frames are skipped, not mislabelled
        tags = [make_tag(FRAME, "rx_rate", pmt.from_double(3e6))]
        seg, frames, _, _ = run_segmenter(tone_frames(FRAME + 2 * 4500), InProcessModel(
            frame_seconds=FRAME / RATE), tags=tags, occupancy=False)
        self.assertEqual(len(frames), 1)
        self.assertGreaterEqual(seg.n_rejected, 1)

    def test_008_nonfinite_counted(self):
        data = self.data.copy()
        data[[5, 100, 2000]] = np.nan
        data[7] = np.inf
        _, frames, _, _ = run_segmenter(data, InProcessModel(frame_seconds=FRAME / RATE),
                                        occupancy=False)
        self.assertEqual([f["nonfinite"] for f in frames], [3, 1, 0])

    def test_009_eos_tail_padded(self):
        n = 2 * FRAME + 700
        tags = [make_tag(n - 1, "specdiff_eos", pmt.PMT_T)]
        _, frames, dets, _ = run_segmenter(self.data[:n], InProcessModel(
            frame_seconds=FRAME / RATE), tags=tags, occupancy=False)
        self.assertEqual(len(frames), 3)
        self.assertEqual(frames[-1]["n_samples"], 700)
        self.assertEqual(frames[-1]["padded"], FRAME - 700)
        self.assertTrue(all(d["sample_start"] + d["sample_count"] <= n for d in dets))

    def test_010_model_errors(self):
        with tempfile.TemporaryDirectory() as tmp:
            with self.assertRaisesRegex(ValueError, "not found|does not exist"):
                segmenter(os.path.join(tmp, "missing.ts"), samp_rate=RATE)
            path = export_threshold_model(os.path.join(tmp, "m.ts"), frame_seconds=FRAME / RATE)
            seg = segmenter(str(path), device="cpu", samp_rate=RATE)
            self.assertEqual(seg.frame_len, FRAME)
            with open(path, "r+b") as f:
                f.seek(100)
                f.write(b"corrupt!")
            with self.assertRaisesRegex(ValueError, "sha256|corrupt"):
                segmenter(str(path), samp_rate=RATE)
            import torch
            if not torch.cuda.is_available():
                with self.assertRaisesRegex(ValueError, "CUDA"):
                    segmenter(str(path), device="cuda", samp_rate=RATE)

    def test_014_test_time_flips(self):
        """Flips wrap the loaded model (the per-pixel threshold model commutes with them, so
        the maps must not change); a model exported without probabilities() is refused with
        the way out; flips on an already loaded model are refused."""
        with tempfile.TemporaryDirectory() as tmp:
            path = export_threshold_model(os.path.join(tmp, "p.ts"), frame_seconds=FRAME / RATE,
                                          probabilities=True)
            data = tone_frames(2 * FRAME)
            _, plain, _, _ = run_segmenter(data, str(path), device="cpu")
            seg, flipped, _, _ = run_segmenter(data, str(path), device="cpu",
                                               flips="frequency+time")
            self.assertEqual(seg.model.flips, ["frequency", "time"])
            self.assertEqual(len(flipped), 2)
            for a, b in zip(plain, flipped):
                self.assertTrue(a["class_map"].any())  # the tone is found
                np.testing.assert_array_equal(a["class_map"], b["class_map"])
            old = export_threshold_model(os.path.join(tmp, "old.ts"), frame_seconds=FRAME / RATE)
            with self.assertRaisesRegex(ValueError, "re-export"):
                segmenter(str(old), device="cpu", samp_rate=RATE, flips="frequency")
            with self.assertRaisesRegex(ValueError, "unknown flip 'sideways'"):
                segmenter(str(path), device="cpu", samp_rate=RATE, flips="sideways")
            with self.assertRaisesRegex(ValueError, "load_model"):
                segmenter(InProcessModel(frame_seconds=FRAME / RATE), samp_rate=RATE,
                          flips="frequency")

    def test_015_precision(self):
        """Precision bfloat16 reaches the loaded model (float32 where the CPU lacks native
        bfloat16) and keeps the maps; on an already loaded model it is refused."""
        from gr_specdiff.model.export import cpu_has_native_bf16

        with tempfile.TemporaryDirectory() as tmp:
            path = export_threshold_model(os.path.join(tmp, "p.ts"), frame_seconds=FRAME / RATE)
            data = tone_frames(2 * FRAME)
            _, plain, _, _ = run_segmenter(data, str(path), device="cpu")
            seg, bf16, _, _ = run_segmenter(data, str(path), device="cpu", precision="bfloat16")
            self.assertEqual(seg.model.precision,
                             "bfloat16" if cpu_has_native_bf16() else "float32")
            self.assertEqual(len(bf16), 2)
            for a, b in zip(plain, bf16):
                self.assertTrue(a["class_map"].any())
                np.testing.assert_array_equal(a["class_map"], b["class_map"])
            with self.assertRaisesRegex(ValueError, "precision must be one of"):
                segmenter(str(path), device="cpu", samp_rate=RATE, precision="half")
            with self.assertRaisesRegex(ValueError, "load_model"):
                segmenter(InProcessModel(frame_seconds=FRAME / RATE), samp_rate=RATE,
                          precision="bfloat16")

    def test_011_no_busy_loop_while_a_frame_is_in_flight(self):
        """The held last item must not make the scheduler call work() back to back: that
        churn took the GIL ~10,000 times a second from the inference thread (5x slower)."""
        calls = []

        class counting(segmenter):
            def general_work(self, input_items, output_items):
                calls.append(len(input_items[0]))
                return super().general_work(input_items, output_items)

        model = SlowModel(0.25, frame_seconds=FRAME / RATE)
        tb = gr.top_block()
        src = blocks.vector_source_c(tone_frames(2 * FRAME, RATE).tolist(), False)
        seg = counting(model, samp_rate=RATE, policy="block", occupancy=False,
                       frame_seconds=FRAME / RATE)
        tb.connect(src, seg)
        t0 = time.monotonic()
        tb.run()
        elapsed = time.monotonic() - t0
        self.assertEqual(seg.processed_frames(), 2)
        # One call per ~1 ms wait at most (a spinning scheduler makes 5,000-20,000 a second).
        self.assertLess(len(calls) / elapsed, 1500, f"{len(calls)} calls in {elapsed:.2f} s")

    def test_012_detection_message_fields(self):
        """Every field of a detection message, with its type, as the docs list them."""
        from gr_specdiff import runtime as rt
        from gr_specdiff.blocks.segmenter import detection_pmt

        d = rt.Detection(class_index=3, label="radar", f_lower=-1.5e6, f_upper=2.5e6,
                         t_start=0.25, t_stop=0.5, sample_start=10, sample_count=20,
                         confidence=0.75, snr_db=12.5, row_start=1, row_stop=2,
                         col_start=3, col_stop=4, n_pixels=5, frame=6)
        got = pmt.to_python(detection_pmt(d, 2.4e9))
        want = {k: v for k, v in d.to_dict(2.4e9).items() if k not in ("label", "n_pixels")}
        want["class"] = "radar"
        self.assertEqual(got, want)
        for k in ("class_index", "sample_start", "sample_count", "frame", "col_stop"):
            self.assertIsInstance(got[k], int, k)
        for k in ("f_lower", "t_start", "confidence", "snr_db", "freq_upper_edge"):
            self.assertIsInstance(got[k], float, k)


if __name__ == "__main__":
    gr_unittest.run(qa_segmenter)

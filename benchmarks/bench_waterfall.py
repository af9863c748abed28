# SPDX-License-Identifier: GPL-3.0-or-later
"""Cost of one ``waterfall_sink`` draw on the Qt thread: redraw alone, and redraw + paint.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_waterfall.py \
        [--model models/specdiff_default] [--draws 40] [--history 4] [--profile]

Frames are real segmenter output: synthetic NR + LTE + radar scenes at 20 MS/s through
``runtime.analyse_frame`` with the model and the segmenter's own detection table, so the
class maps and boxes are what a live flowgraph shows. Every draw adds one new frame, as the
live display does. The GUI thread shares the CPU (and Python's GIL) with inference, so every
millisecond here is one the model does not get on a small machine.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def make_frames(model_path: str, n: int, rate: float) -> list[dict]:
    """``frames`` messages (as the display decodes them) of real segmenter output."""
    from segmenter_frames import CENTER_FREQ, analysed_frames

    from gr_specdiff import runtime as rt
    from gr_specdiff.blocks.pmt_arrays import dict_to_python
    from gr_specdiff.blocks.segmenter import detection_table_pmt

    return [{"class_map": res.class_map, "db_image": rt.sg.to_db_image(res.spec.features),
             "sample_rate": rate, "center_freq": CENTER_FREQ, "rx_time": res.job.rx_time,
             "n_samples": len(res.job.iq),
             "detections": dict_to_python(detection_table_pmt(res.detections, CENTER_FREQ))}
            for res in analysed_frames(model_path, n, rate)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/specdiff_default")
    ap.add_argument("--draws", type=int, default=40)
    ap.add_argument("--history", type=int, default=4)
    ap.add_argument("--frames", type=int, default=8, help="distinct frames, cycled")
    ap.add_argument("--profile", action="store_true", help="cProfile the redraws (top 15)")
    args = ap.parse_args()
    from PyQt5 import QtWidgets

    from gr_specdiff.blocks.waterfall_sink import FrameView, WaterfallWidget

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    frames = [FrameView(d) for d in make_frames(args.model, args.frames, 20e6)]
    boxes = np.mean([len(f.boxes) for f in frames])
    w = WaterfallWidget(history=args.history, max_fps=0)
    w.resize(1100, 800)
    w.show()
    app.processEvents()
    for f in frames[:args.history]:  # fill the history first
        w.show_frame(f)
    app.processEvents()

    def run(paint: bool) -> float:
        t0 = time.perf_counter()
        for i in range(args.draws):
            w.show_frame(frames[i % len(frames)])
            if paint:
                w.grab()
        return (time.perf_counter() - t0) / args.draws * 1e3

    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        run(True)
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(15)
    redraw, full = run(False), run(True)
    print(f"history {args.history} frames, {boxes:.1f} detections per frame, "
          f"{args.draws} draws, 1100 x 800 offscreen")
    print("| step | ms per draw |\n|---|---|")
    print(f"| redraw (image + boxes) | {redraw:.1f} |")
    print(f"| redraw + paint | {full:.1f} |")


if __name__ == "__main__":
    main()

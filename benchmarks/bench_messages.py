# SPDX-License-Identifier: GPL-3.0-or-later
"""Cost of a frame's detections as PMT messages: the ``frames`` message's detection table
(one f64 vector per field) against one PMT dict per detection (the ``detections`` port and
pass-through tags; the ``frames`` message carried these until 2026-12-02).

    .venv/bin/python benchmarks/bench_messages.py [--model models/specdiff_default] [--frames 8]

Frames are real segmenter output (synthetic NR + LTE + radar scenes at 20 MS/s through
``runtime.analyse_frame``). Building runs on the segmenter's worker thread, beside the model;
reading runs in the display's message handler: both share the GIL with everything else.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def per_call_ms(fn, items, repeat: int) -> float:
    t0 = time.perf_counter()
    for _ in range(repeat):
        for it in items:
            fn(it)
    return (time.perf_counter() - t0) / (repeat * len(items)) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/specdiff_default")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    import pmt
    from segmenter_frames import CENTER_FREQ, analysed_frames

    from gr_specdiff.blocks.pmt_arrays import dict_to_python
    from gr_specdiff.blocks.segmenter import detection_pmt, detection_table_pmt

    dets = [res.detections for res in analysed_frames(args.model, args.frames)]

    def dict_vector(ds):
        vec = pmt.make_vector(len(ds), pmt.PMT_NIL)
        for k, d in enumerate(ds):
            pmt.vector_set(vec, k, detection_pmt(d, CENTER_FREQ))
        return vec

    def in_message(value):  # as the frames message nests it
        return pmt.dict_add(pmt.make_dict(), pmt.intern("detections"), value)

    tables = [in_message(detection_table_pmt(ds, CENTER_FREQ)) for ds in dets]
    vectors = [in_message(dict_vector(ds)) for ds in dets]
    rows = [
        ("table (f64 vector per field)",
         per_call_ms(lambda ds: detection_table_pmt(ds, CENTER_FREQ), dets, args.repeat),
         per_call_ms(dict_to_python, tables, args.repeat)),
        ("one dict per detection",
         per_call_ms(dict_vector, dets, args.repeat),
         per_call_ms(dict_to_python, vectors, args.repeat)),
    ]
    print(f"{np.mean([len(d) for d in dets]):.1f} detections per frame (mean of {args.frames})")
    print("| detections as | build ms/frame | read ms/frame |")
    print("|---|---|---|")
    for name, build, read in rows:
        print(f"| {name} | {build:.2f} | {read:.2f} |")


if __name__ == "__main__":
    main()

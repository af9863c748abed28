#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""GNU Radio runtime benchmark: source -> segmenter at 61.44 and 20 MS/s.

Prints per rate:
* front end: sustained input throughput (MS/s) without throttle, trivial model (buffering +
  spectrogram + detections only), policy 'block';
* pipeline: the same with the real model (``--model``, default a randomly initialised
  ``lite`` export), policy 'block';
* real time: throttled to the sample rate, policy 'drop': frames processed and dropped per
  second, latency from the end of a frame to its ``frames`` message (median, p99), CPU use
  (process CPU seconds / wall seconds, in cores), resident memory after a warm-up (first quarter
  of the run) and at its end (``--minutes``; the issue's no-growth check is ``--minutes 10``).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

from gr_specdiff import PRECISIONS


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class NullModel:
    """Front-end-only stand-in: an all-noise class map, no inference cost."""

    def __init__(self, frame_seconds=0.04):
        self.card = {"name": "null", "sample_rates": [], "frame_seconds": frame_seconds}
        self.device = "cpu"

    def __call__(self, features):
        b = len(features)
        return np.zeros((b, 256, 256), np.uint8), np.ones((b, 256, 256), np.float32)


def test_signal(rate, seconds=0.04, seed=0):
    """One frame of noise + an OFDM-like carrier + radar pulses (repeated by the source)."""
    rng = np.random.default_rng(seed)
    n = int(round(rate * seconds))
    x = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64) * 0.01
    sym = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
    spec = np.fft.fft(sym)
    f = np.fft.fftfreq(n, 1 / rate)
    spec[np.abs(f - 0.15 * rate) > 0.08 * rate] = 0
    x += 0.05 * np.fft.ifft(spec).astype(np.complex64)
    for start in range(0, n, int(rate * 1e-3)):
        x[start:start + int(rate * 2e-6)] += 0.3
    return x


def message_counter():
    """A message sink that counts and discards (message_debug 'store' would grow memory)."""
    import pmt
    from gnuradio import gr

    class counter(gr.basic_block):
        def __init__(self):
            gr.basic_block.__init__(self, "msg_counter", None, None)
            self.n = 0
            self.message_port_register_in(pmt.intern("in"))
            self.set_msg_handler(pmt.intern("in"), self.handle)

        def handle(self, msg):
            self.n += 1

    return counter()


def run_flowgraph(rate, model, policy, n_frames=None, seconds=None, depth=2, buffer=0):
    from gnuradio import blocks, gr

    from gr_specdiff.blocks import segmenter

    frame = test_signal(rate)
    tb = gr.top_block()
    src = blocks.vector_source_c(frame.tolist(), True)
    if buffer:  # bigger upstream buffers: fewer, larger work() calls in the segmenter
        src.set_min_output_buffer(buffer)
    seg = segmenter(model, samp_rate=rate, policy=policy, queue_depth=depth, occupancy=False)
    head = None
    if n_frames is not None:
        head = blocks.head(gr.sizeof_gr_complex, n_frames * len(frame))
        if buffer:
            head.set_min_output_buffer(buffer)
        tb.connect(src, head, seg)
    else:
        thr = blocks.throttle(gr.sizeof_gr_complex, rate, True)
        if buffer:
            thr.set_min_output_buffer(buffer)
        tb.connect(src, thr, seg)
    sink = message_counter()
    tb.msg_connect(seg, "frames", sink, "in")
    rss0, c0, t0 = rss_mb(), cpu_s(), time.monotonic()
    if n_frames is not None:
        tb.run()
    else:
        tb.start()
        time.sleep(seconds * 0.25)  # warm-up: buffers, queue and torch allocations
        rss0 = rss_mb()
        time.sleep(seconds * 0.75)
        wall = time.monotonic() - t0
        tb.stop()
        tb.wait()
    if n_frames is not None:
        wall = time.monotonic() - t0
    cpu = cpu_s() - c0
    lat = np.array(seg.latencies) * 1e3
    res = {
        "wall": wall, "cpu_cores": cpu / wall, "rss0": rss0, "rss1": rss_mb(),
        "processed": seg.processed_frames(), "dropped": seg.dropped_frames(),
        "lat_med": float(np.median(lat)) if lat.size else float("nan"),
        "lat_p99": float(np.percentile(lat, 99)) if lat.size else float("nan"),
        # Input actually consumed (a starved segmenter slows a throttled source down).
        "msps": seg._frame_index * len(frame) / wall / 1e6,
    }
    seg.stop()
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="", help="exported model (default: random lite)")
    ap.add_argument("--rates", type=float, nargs="+", default=[61.44e6, 20e6])
    ap.add_argument("--frames", type=int, default=6, help="frames in the unthrottled runs")
    ap.add_argument("--minutes", type=float, default=0.25, help="length of the real-time run")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--flips", default="",
                    help="test-time flips of the model: frequency or frequency+time")
    ap.add_argument("--precision", default="float32", choices=PRECISIONS,
                    help="the model's precision (bfloat16: autocast, on a CPU with native "
                         "bfloat16)")
    ap.add_argument("--skip-front-end", action="store_true",
                    help="only the model rows (the front end does not depend on the model)")
    ap.add_argument("--skip-pipeline", action="store_true")
    ap.add_argument("--buffer", type=int, default=1 << 18,
                    help="min output buffer (items) upstream of the segmenter (0: default)")
    args = ap.parse_args(argv)

    from gr_specdiff import spectrogram as sg
    from gr_specdiff.runtime import open_model

    model_path = args.model
    tmp = None
    if not model_path:
        tmp = tempfile.TemporaryDirectory()
        model_path = os.path.join(tmp.name, "lite_random")
        subprocess.run([sys.executable, "-m", "gr_specdiff.cli", "export", "--random",
                        "--config", "lite", "--out", model_path], check=True,
                       stdout=subprocess.DEVNULL)
        model_path += ".ts"
    model = open_model(model_path, args.device, flips=args.flips, precision=args.precision)
    model.warm_up()  # as the segmenter does when it loads a model itself
    native = sg.native_available() if hasattr(sg, "native_available") else False
    views = f", flips {'+'.join(model.flips)}" if model.flips else ""
    views += f", {model.precision}"
    print(f"model {model_path} on {model.device}{views}; front end "
          f"{'native' if native else 'numpy'}; {os.cpu_count()} CPU(s)")
    print()
    head = (f"{'rate MS/s':>9} | {'run':<26} | {'MS/s':>7} | {'x RT':>5} | {'proc/s':>6} | "
            f"{'drop/s':>6} | {'lat med ms':>10} | {'lat p99 ms':>10} | {'CPU cores':>9} | "
            f"{'RSS MB start->end':>17}")
    print(head)
    print("-" * len(head))

    def row(rate, name, r, rt=False):
        per = r["wall"]
        x_rt = r["msps"] / (rate / 1e6)
        print(f"{rate / 1e6:>9.2f} | {name:<26} | {r['msps']:>7.1f} | {x_rt:>5.2f} | "
              f"{r['processed'] / per:>6.1f} | {r['dropped'] / per:>6.1f} | "
              f"{r['lat_med']:>10.0f} | {r['lat_p99']:>10.0f} | {r['cpu_cores']:>9.2f} | "
              f"{r['rss0']:>7.0f} -> {r['rss1']:>6.0f}", flush=True)

    # One discarded run first, so the first row does not carry the process's one-time start-up
    # (GNU Radio's scheduler, the front end's plans, first touches of the big buffers).
    run_flowgraph(args.rates[0], NullModel(), "block", n_frames=2, buffer=args.buffer)
    for rate in args.rates:
        if not args.skip_front_end:
            row(rate, "front end, no throttle, 8k", run_flowgraph(rate, NullModel(), "block",
                                                                  n_frames=args.frames))
            if args.buffer:
                row(rate, f"front end, no throttle, {args.buffer >> 10}k", run_flowgraph(
                    rate, NullModel(), "block", n_frames=args.frames, buffer=args.buffer))
        if not args.skip_pipeline:
            row(rate, "pipeline, no throttle", run_flowgraph(
                rate, model, "block", n_frames=max(2, args.frames // 2), buffer=args.buffer))
        row(rate, f"real time {args.minutes:g} min, drop",
            run_flowgraph(rate, model, "drop", seconds=args.minutes * 60, buffer=args.buffer),
            rt=True)
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()

# SPDX-License-Identifier: GPL-3.0-or-later
"""``specdiff live``: the Qt waterfall with the SpecDiff overlay on a scene, a recording or an
SDR (UHD / Soapy). The segmenter runs with the ``drop`` policy, so a slow model drops frames
(counted in the status bar) instead of stalling the radio."""

from __future__ import annotations

import os
import sys

from gr_specdiff.commands import add_flips_argument, add_precision_argument


def register(subparsers):
    p = subparsers.add_parser("live", help="live Qt waterfall with the class overlay",
                              description=__doc__)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--scene", action="store_true", help="synthetic scene (default)")
    src.add_argument("--recording", help="play a .sigmf-meta recording in a loop (real time)")
    src.add_argument("--uhd", metavar="ARGS", help='USRP via UHD, device args (e.g. "" or '
                     '"type=b200")')
    src.add_argument("--soapy", metavar="ARGS", help='SDR via SoapySDR (e.g. "driver=hackrf")')
    p.add_argument("--rate", type=float, default=None,
                   help="sample rate S/s (scene default 20e6, UHD 61.44e6, Soapy 20e6)")
    p.add_argument("--freq", type=float, default=2.8e9, help="centre frequency Hz")
    p.add_argument("--gain", type=float, default=30.0, help="SDR gain dB")
    p.add_argument("--mix", default="all", help="scene mix: random, nr, lte, radar, nr+lte, all")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="", help="model .ts (default: models/specdiff_default.ts)")
    p.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    add_flips_argument(p)
    add_precision_argument(p)
    p.add_argument("--queue-depth", type=int, default=2)
    p.add_argument("--history", type=int, default=4, help="frames shown in the waterfall")
    p.add_argument("--seconds", type=float, default=0.0, help="quit after N seconds (0: never)")
    p.add_argument("--screenshot", help="save a PNG of the window just before quitting")
    p.set_defaults(func=run)


def build(args):
    """(top_block, segmenter, waterfall_sink) for ``args``; raises ValueError on bad input."""
    from gnuradio import blocks, gr

    from gr_specdiff.blocks import scene_source, segmenter, sigmf_source, waterfall_sink

    tb = gr.top_block("specdiff_live")
    if args.recording:
        src = sigmf_source(args.recording, repeat=True)
        rate, fc = src.samp_rate, src.center_freq
        thr = blocks.throttle(gr.sizeof_gr_complex, rate, True)
        tb.connect(src, thr)
        head, title = thr, f"SpecDiff: {os.path.basename(args.recording)}"
    elif args.uhd is not None:
        from gnuradio import uhd

        rate = args.rate or 61.44e6
        fc = args.freq
        head = uhd.usrp_source(args.uhd, uhd.stream_args(cpu_format="fc32", channels=[0]))
        head.set_samp_rate(rate)
        head.set_center_freq(fc, 0)
        head.set_gain(args.gain, 0)
        rate = head.get_samp_rate()
        title = f"SpecDiff: USRP {args.uhd}"
    elif args.soapy is not None:
        from gnuradio import soapy

        rate = args.rate or 20e6
        fc = args.freq
        head = soapy.source(args.soapy, "fc32", 1, "", "", [""], [""])
        head.set_sample_rate(0, rate)
        head.set_frequency(0, fc)
        head.set_gain(0, args.gain)
        title = f"SpecDiff: {args.soapy}"
    else:
        rate = args.rate or 20e6
        fc = args.freq
        head = scene_source(samp_rate=rate, center_freq=fc, seed=args.seed, mix=args.mix,
                            throttle=True, n_unique=8)
        title = f"SpecDiff: synthetic scene ({args.mix})"
    seg = segmenter(args.model, device=args.device, samp_rate=0 if args.recording else rate,
                    center_freq=fc, policy="drop", queue_depth=args.queue_depth,
                    occupancy=False, flips=args.flips, precision=args.precision)
    wf = waterfall_sink(title=title, history=args.history)
    head.set_min_output_buffer(1 << 18)  # large chunks for the Python segmenter
    tb.connect(head, seg)
    tb.msg_connect(seg, "frames", wf, "frames")
    # Python blocks must outlive build(): the scheduler calls back into these objects.
    tb.keep_alive = [b for b in (locals().get("src"), head, seg, wf) if b is not None]
    return tb, seg, wf


def run(args) -> int:
    import numpy as np
    from PyQt5 import QtCore, QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    tb, seg, wf = build(args)
    win = wf.getWidget()
    win.setWindowTitle("specdiff live")
    win.resize(1100, 800)
    win.show()
    tb.start()

    def finish():
        if args.screenshot:
            win.grab_png(args.screenshot)
            print(f"wrote {args.screenshot}")
        app.quit()

    if args.seconds > 0:
        QtCore.QTimer.singleShot(int(args.seconds * 1000), finish)
    try:
        app.exec_()
    finally:
        tb.stop()
        tb.wait()
    lat = np.array(seg.latencies) * 1e3
    tail = (f"; latency median {np.median(lat):.0f} ms, p99 {np.percentile(lat, 99):.0f} ms"
            if lat.size else "")
    print(f"frames analysed {seg.processed_frames()}, dropped {seg.dropped_frames()}{tail}")
    return 0

# SPDX-License-Identifier: GPL-3.0-or-later
"""``specdiff sense``: analyse a recording headless (the same blocks as the live flowgraph).

sigmf_source -> segmenter (policy 'block') -> frames/detections messages; prints a
detections table and writes ``DIR/<name>.sigmf-meta`` (the recording's metadata plus the
detections as annotations) and ``DIR/<name>.png`` (spectrogram with the class overlay).
Without a recording it analyses an embedded default scene (written to ``DIR`` first).
"""

from __future__ import annotations

import sys
from pathlib import Path

from gr_specdiff.commands import add_flips_argument, add_precision_argument

FORMATS = ("cf32_le", "ci16_le", "ci8", "cu8")


def register(subparsers):
    p = subparsers.add_parser(
        "sense", help="analyse a SigMF recording (or raw IQ file) headless",
        description=__doc__.split("\n\n")[0])
    p.add_argument("recording", nargs="?", default=None,
                   help=".sigmf-meta file, or raw IQ with --rate/--format (default: an "
                        "embedded synthetic scene)")
    p.add_argument("--model", default="", help="model .ts (default: models/specdiff_default.ts)")
    p.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    add_flips_argument(p)
    add_precision_argument(p)
    p.add_argument("--out", default="out/sense", help="output directory (default: out/sense)")
    p.add_argument("--rate", type=float, default=0.0, help="raw files: sample rate in S/s")
    p.add_argument("--format", default="", choices=("",) + FORMATS,
                   help="raw files: sample format")
    p.add_argument("--freq", type=float, default=0.0, help="raw files: centre frequency Hz")
    p.add_argument("--max-rows", type=int, default=40, help="detections printed (0 = all)")
    p.add_argument("--png-frames", type=int, default=8, help="frames drawn in the PNG")
    p.add_argument("--min-pixels", type=int, default=4,
                   help="smallest connected component reported as a detection")
    p.add_argument("--no-strict-rate", action="store_true",
                   help="run even if the sample rate is not one the model was trained for")
    p.add_argument("--scene-seed", type=int, default=0, help="embedded scene: random seed")
    p.add_argument("--scene-rate", type=float, default=20e6, help="embedded scene: rate")
    p.add_argument("--scene-frames", type=int, default=2, help="embedded scene: frames")
    p.set_defaults(func=run)


def make_default_scene(out_dir: Path, seed=0, rate=20e6, n_frames=2, frame_seconds=0.04):
    """Write an NR + LTE + radar scene (truth as annotations) to
    ``out_dir/recording/default_scene.sigmf-meta``."""
    import numpy as np

    from gr_specdiff import scene
    from gr_specdiff.blocks.scene_source import build_spec
    from gr_specdiff.scene.sigmf_io import scene_annotations, write_recording

    rng = np.random.default_rng(seed)
    fc = 2.8e9
    spec = build_spec("all", None, fc)
    iqs, anns = [], []
    for k in range(n_frames):
        sc = scene.generate(rng, rate, frame_seconds, spec)
        for a in scene_annotations(sc, fc):
            a["core:sample_start"] += k * len(sc.iq)
            a["core:label"] = f"truth:{a.get('core:label', '')}"
            anns.append(a)
        iqs.append(sc.iq)
    iq = np.concatenate(iqs).astype(np.complex64)
    base = Path(out_dir) / "recording" / "default_scene"
    base.parent.mkdir(parents=True, exist_ok=True)
    return write_recording(base, iq, rate, fc, anns, extra_global={
        "core:description": f"gr-specdiff synthetic scene (seed {seed}); truth annotations "
                            "are labelled truth:<class>"})


class _Collector:
    """Message sink storing ``frames`` messages as Python dicts, each detection as a dict
    (built lazily: gnuradio)."""

    def __new__(cls):
        import pmt
        from gnuradio import gr

        from gr_specdiff import runtime as rt
        from gr_specdiff.blocks.pmt_arrays import dict_to_python

        class collector(gr.basic_block):
            def __init__(self):
                gr.basic_block.__init__(self, "specdiff_collector", None, None)
                self.frames = []
                self.message_port_register_in(pmt.intern("frames"))
                self.set_msg_handler(pmt.intern("frames"), self.handle)

            def handle(self, msg):
                d = dict_to_python(msg)
                d["detections"] = rt.detection_rows(d["detections"], list(d["classes"]))
                self.frames.append(d)

        return collector()


def analyse(recording, model="", device="auto", out_dir="out/sense", rate=0.0, fmt="",
            freq=0.0, png_frames=8, min_pixels=4, strict_rate=True, max_rows=40, log=print,
            flips="", precision="float32"):
    """Run the headless flowgraph; returns a summary dict (frames, detections, paths)."""
    import time

    from gnuradio import gr

    from gr_specdiff import runtime as rt
    from gr_specdiff.blocks import segmenter, sigmf_annotation_sink, sigmf_source

    rec = Path(recording)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = rec.name[: -len(".sigmf-meta")] if rec.name.endswith(".sigmf-meta") else (
        rec.name[: -len(".sigmf-data")] if rec.name.endswith(".sigmf-data") else rec.stem)
    src = sigmf_source(str(rec), repeat=False, datatype=fmt, samp_rate=rate, center_freq=freq)
    seg = segmenter(model, device=device, samp_rate=src.samp_rate,
                    center_freq=src.center_freq, policy="block", queue_depth=2,
                    occupancy=False, strict_rate=strict_rate, min_pixels=min_pixels,
                    flips=flips, precision=precision)
    meta_out = out / f"{name}.sigmf-meta"
    if meta_out.resolve() == rec.with_suffix(".sigmf-meta").resolve():
        raise ValueError(f"--out {out} would overwrite the recording's own metadata; "
                         "choose another output directory")
    is_sigmf = src.meta is not None and rec.suffix in (".sigmf-meta", ".sigmf-data")
    if is_sigmf:
        sink = sigmf_annotation_sink(str(meta_out), recording=str(rec.with_suffix(".sigmf-meta")))
    else:
        sink = sigmf_annotation_sink(str(meta_out), samp_rate=src.samp_rate,
                                     center_freq=src.center_freq, datatype=fmt)
    sink.global_info["specdiff:recording"] = str(
        (rec.with_suffix(".sigmf-data") if is_sigmf else rec).resolve())
    sink.global_info["specdiff:model"] = str(seg.card.get("name", ""))
    col = _Collector()
    tb = gr.top_block("specdiff_sense")
    tb.connect(src, seg)
    tb.msg_connect(seg, "detections", sink, "detections")
    tb.msg_connect(seg, "frames", col, "frames")
    t0 = time.monotonic()
    tb.run()
    wall = time.monotonic() - t0
    for _ in range(100):  # message queues drain after the stream ends
        if len(col.frames) >= seg.processed_frames():
            break
        time.sleep(0.02)
    sink.flush()
    frames = sorted(col.frames, key=lambda f: f["frame"])
    dets = [d for f in frames for d in (f.get("detections") or [])]
    n = src.n_samples
    tail = n % seg.frame_len
    log(f"recording {rec} : {n} samples at {src.samp_rate / 1e6:g} MS/s, centre "
        f"{src.center_freq / 1e6:g} MHz ({n / src.samp_rate * 1e3:.1f} ms)")
    log(f"model {seg.card.get('name', '?')} on {getattr(seg.model, 'device', '?')}; "
        f"{len(frames)} frame(s) of {seg.frame_len} samples analysed in {wall:.2f} s")
    if n < seg.frame_len:
        log(f"note: the recording is shorter than one frame ({n} < {seg.frame_len} samples): "
            f"padded with {seg.frame_len - n} samples of noise at its own level and analysed")
    elif tail:
        log(f"note: the last {tail} samples (partial frame) were padded with "
            f"{seg.frame_len - tail} samples of noise at the recording's level and analysed")
    if seg.n_nonfinite:
        log(f"warning: {seg.n_nonfinite} NaN/Inf samples were replaced by 0")
    if seg.n_rejected:
        log(f"warning: {seg.n_rejected} frame(s) skipped (unsupported sample rate)")
    log("")
    shown = dets if max_rows <= 0 else sorted(
        dets, key=lambda d: -d["sample_count"] * d["bandwidth"])[:max_rows]
    shown.sort(key=lambda d: (d["sample_start"], d["f_lower"]))
    log(rt.format_table(shown) if dets else "no signals detected")
    if len(shown) < len(dets):
        log(f"... {len(dets) - len(shown)} smaller detection(s) not shown (--max-rows 0: all; "
            "all are in the SigMF file)")
    png = None
    if frames:
        png = rt.render_overlay_png(out / f"{name}.png", frames, max_frames=png_frames,
                                    title=f"{name}: {len(dets)} detection(s)")
    log("")
    log(f"wrote {meta_out} ({len(dets)} annotation(s))" + (f" and {png}" if png else ""))
    return {"frames": frames, "detections": dets, "meta": meta_out, "png": png,
            "n_samples": n, "frame_len": seg.frame_len, "nonfinite": seg.n_nonfinite,
            "wall_s": wall}


def run(args) -> int:
    rec = args.recording
    if rec is None:
        rec = make_default_scene(Path(args.out), args.scene_seed, args.scene_rate,
                                 args.scene_frames)
        print(f"no recording given: analysing the embedded default scene {rec}")
    analyse(rec, args.model, args.device, args.out, args.rate, args.format, args.freq,
            args.png_frames, args.min_pixels, not args.no_strict_rate, args.max_rows,
            flips=args.flips, precision=args.precision)
    sys.stdout.flush()
    return 0

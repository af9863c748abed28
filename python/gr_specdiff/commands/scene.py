# SPDX-License-Identifier: GPL-3.0-or-later
"""``specdiff scene``: write one synthetic scene as a SigMF recording with truth annotations."""

from __future__ import annotations

_SIG_HELP = ("add one {kind} signal; optional comma-separated key=value parameters, e.g. "
             "{example} (snr_db, f_center, channel=<profile>, doppler_hz and any drawn "
             "parameter; lists with '/'). Repeat for more signals.")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "scene", help="write a synthetic NR/LTE/radar scene as a SigMF recording",
        description="Generate one scene (no signal options: a random scene from the training "
                    "distribution) and write NAME.sigmf-data + NAME.sigmf-meta with one "
                    "annotation per signal (core:label NR/LTE/radar, band edges, samples, "
                    "parameters under specdiff:).")
    p.add_argument("--nr", action="append", nargs="?", const="", metavar="K=V,...",
                   help=_SIG_HELP.format(kind="NR", example="scs_khz=30,bw_mhz=40,snr_db=10"))
    p.add_argument("--lte", action="append", nargs="?", const="", metavar="K=V,...",
                   help=_SIG_HELP.format(kind="LTE", example="bw_mhz=10,duplex=TDD"))
    p.add_argument("--radar", action="append", nargs="?", const="", metavar="K=V,...",
                   help=_SIG_HELP.format(kind="radar", example="kind=asr,f_center=-5e6"))
    p.add_argument("--snr", type=float, default=None,
                   help="in-band SNR (dB) of every signal without its own snr_db")
    p.add_argument("--rate", type=float, default=61.44e6, help="sample rate S/s")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frame-seconds", type=float, default=0.04)
    p.add_argument("--center-freq", type=float, default=2.8e9,
                   help="core:frequency of the recording in Hz (default 2.8e9)")
    p.add_argument("--device", choices=["ideal", "b210", "hackrf"], default=None,
                   help="receiver impairment profile (default: drawn)")
    p.add_argument("--no-noise", action="store_true", help="leave out thermal noise")
    p.add_argument("--preset", choices=["realistic", "paper"], default="realistic")
    p.add_argument("--datatype", choices=["cf32_le", "ci16_le"], default="cf32_le")
    p.add_argument("--png", default=None, help="also write a spectrogram + labels PNG here")
    p.add_argument("--out", required=True, help="NAME.sigmf-meta (or NAME)")
    p.set_defaults(func=run)


def _value(v: str):
    if "/" in v:
        return [_value(x) for x in v.split("/") if x]
    low = v.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def parse_signal(text: str) -> dict:
    """'a=1,b=x' -> {'a': 1, 'b': 'x'} (ValueError on a malformed item)."""
    out = {}
    for item in filter(None, (t.strip() for t in (text or "").split(","))):
        if "=" not in item:
            raise ValueError(f"signal parameter {item!r} is not key=value")
        k, v = item.split("=", 1)
        out[k.strip()] = _value(v.strip())
    return out


def build_spec(args):
    from gr_specdiff.scene import LTESpec, NRSpec, RadarSpec, SceneSpec

    if not (args.nr or args.lte or args.radar):
        return None
    spec = SceneSpec(center_freq=args.center_freq, noise=not args.no_noise)
    if args.device:
        spec.impairments = {"device": args.device}
    for opts, cls, lst in ((args.nr, NRSpec, spec.nr), (args.lte, LTESpec, spec.lte),
                           (args.radar, RadarSpec, spec.radar)):
        for text in opts or []:
            d = parse_signal(text)
            snr = d.pop("snr_db", args.snr)
            f_c = d.pop("f_center", None)
            ch = {k: d.pop(k) for k in ("doppler_hz", "delay_spread_s", "n_scatterers",
                                         "rician_k_db") if k in d}
            if "channel" in d:
                ch["profile"] = d.pop("channel")
            lst.append(cls(snr_db=snr, f_center=f_c, channel=ch or None, params=d))
    return spec


def run(args) -> int:
    import numpy as np

    from gr_specdiff.scene import generate
    from gr_specdiff.scene.sigmf_io import base_path, scene_annotations, write_recording

    spec = build_spec(args)
    if spec is None and (args.device or args.no_noise or args.center_freq != 2.8e9):
        from gr_specdiff.scene.scene import random_spec

        rng0 = np.random.default_rng(args.seed)
        spec = random_spec(rng0, args.rate)
        spec.center_freq, spec.noise = args.center_freq, not args.no_noise
        if args.device:
            spec.impairments = {"device": args.device}
    rng = np.random.default_rng(args.seed)
    scene = generate(rng, args.rate, args.frame_seconds, spec, args.preset)
    center = args.center_freq
    extra = {"core:description": "gr_specdiff synthetic scene (truth in annotations)",
             "specdiff:seed": int(args.seed), "specdiff:preset": args.preset,
             "specdiff:scene": {k: v for k, v in scene.meta.items() if k != "signals"}}
    path = write_recording(base_path(args.out), scene.iq, scene.sample_rate, center,
                           scene_annotations(scene, center), extra, datatype=args.datatype)
    if args.png:
        from gr_specdiff.data.preview import preview_grid

        preview_grid([scene.features()], [scene.class_map], [scene.meta], args.png, cols=1)
    for s in scene.signals:
        print(f"{s.kind:5s} {(center + s.f_lower) / 1e6:10.3f} - {(center + s.f_upper) / 1e6:10.3f}"
              f" MHz  SNR {s.snr_db:5.1f} dB")
    print(f"wrote {path}")
    return 0
